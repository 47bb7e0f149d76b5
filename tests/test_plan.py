"""reproduction.plan: which runs each figure and the table need, named as in the paper's
reference, each once, with the settings asked reaching every run, in a folder per image size."""

import os

import pytest

from recovery import RecoveryConfig
from reproduction import plan
from reproduction.plan import Settings


def test_figures_3_and_4_are_seven_distinct_runs_as_in_the_paper():
    specs = plan.runs_for(("3", "4"), Settings())
    assert [spec.ckpt for spec in specs] == ["F16_05_128", "Peppers_05_128", "Baboon_05_128", "kodim03_05_128",
                                             "F16_01_128", "F16_03_128", "F16_07_128"]
    assert all(spec.config.num_iter == 150000 and spec.config.show_every == 500 and spec.config.seed == 0
               for spec in specs)
    assert [spec.ckpt for spec in plan.runs_for(("5",), Settings())] == [spec.ckpt for spec in specs]


@pytest.mark.parametrize("width,expected", [(128, ["F16_05_192", "F16_05_192_dip-l1", "F16_05_64_dip-l1"]),
                                            (8, ["F16_05_12", "F16_05_12_dip-l1", "F16_05_4_dip-l1"])])
def test_teaser_widths_scale_with_width(width, expected):
    specs = plan.runs_for(("teaser",), Settings(width=width))
    assert [spec.ckpt for spec in specs] == expected
    assert [spec.config.method for spec in specs] == ["ours", "dip-l1", "dip-l1"]
    assert all(spec.config.num_iter == 200000 for spec in specs)


def test_every_run_once_and_overrides_reach_every_run():
    settings = Settings(width=8, num_iter=40, resize=64, data_dir="somewhere")
    specs = plan.runs_for(plan.TARGETS, settings)
    names = [spec.ckpt for spec in specs]
    assert len(names) == len(set(names)) == 7 + 3 + 14  # Figures 3 and 4, teaser, DIP and DIP-L1 per cell
    for spec in specs:
        config = spec.config
        assert (config.num_iter, config.resize, config.data_dir, config.show_every) == (40, 64, "somewhere", 2)
        assert plan.cell_config(config.image, config.nlevel, settings) == RecoveryConfig(
            image=config.image, nlevel=config.nlevel, seed=0, resize=64, data_dir="somewhere")


def test_different_image_sizes_use_different_run_folders():
    full, small = plan.runs_dir(Settings()), plan.runs_dir(Settings(resize=64))
    assert full != small and os.path.dirname(full) == os.path.dirname(small) == os.path.join("figures", "runs")


@pytest.mark.parametrize("noise", ["salt_pepper_pixel", "random_valued"])
def test_another_noise_reaches_every_run_and_lives_in_its_own_folder(noise):
    settings = Settings(resize=64, noise=noise)
    assert plan.runs_dir(settings) == os.path.join("figures", "runs", f"resize64-{noise}")
    assert plan.runs_dir(Settings(resize=64)) == os.path.join("figures", "runs", "resize64")  # the paper's, as before
    specs = (plan.figure3_runs(settings) + plan.figure4_runs(settings) + plan.teaser_runs(settings)
             + plan.table_runs(settings))
    assert specs and all(spec.config.noise == noise and spec.out_dir == plan.runs_dir(settings) for spec in specs)
    assert all(plan.cell_config(*cell, settings).noise == noise for cell in plan.table_cells())
