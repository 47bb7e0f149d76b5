"""reproduction/folder_files.py: which entries of a folder are images (hidden names, broken links,
loops, every format Pillow opens), the run names (unique and the same on every call, for any file
names: Hypothesis draws them), the input records and the rule that keeps ``--out_dir`` apart from
the folder of images."""

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.settings import MAX_CKPT_LENGTH, RunSpec
from reproduction.folder_files import check_apart, image_extensions, input_record, list_folder, read_record, run_names
from utils.errors import InputError

LONG = "x" * 236  # with ".png", a 240-byte file name


@pytest.mark.parametrize("files, names", [
    (["x.png", "y.jpg"], ["x", "y"]),
    (["x.png", "x.jpg", "z.tif"], ["x_png", "x_jpg", "z"]),
    (["a.png", "a.jpg", "a_png.tif"], ["a_png", "a_jpg", "a_png_tif"]),  # the two runs named a_png
    (["a_png.tif", "b.png"], ["a_png", "b"]),
    (["-x.png", "p|q.png", "two\nlines.png"], ["-x", "p|q", "two\nlines"]),
    (["caf\udcff.png"], ["caf\udcff"]),  # a name that is not UTF-8, as Linux hands it over
])
def test_runs_are_named_after_their_files_and_a_shared_name_keeps_the_extension(files, names):
    assert run_names([f"folder/{name}" for name in files]) == names


def test_a_name_too_long_for_a_run_is_cut_and_given_a_digest_of_the_whole_name():
    first, second = run_names([f"{LONG}.png", f"{LONG}.jpg"])
    assert len(first.encode()) == len(second.encode()) == MAX_CKPT_LENGTH
    assert first.startswith("x" * 180) and first != second
    assert first.endswith("~" + hashlib.sha256(f"{LONG}.png".encode()).hexdigest()[:12])


FILE_NAMES = st.lists(
    st.tuples(st.text(st.sampled_from("a_.|-\n\udcff\u00e9x"), min_size=1, max_size=6).map(lambda stem: stem * 40
                                                                                           if len(stem) == 6 else stem),
              st.sampled_from([".png", ".jpg", ".PNG", ".tif", ".gif"])).map("".join),
    min_size=1, max_size=8, unique=True)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(FILE_NAMES)
def test_run_names_are_unique_valid_and_the_same_on_every_call(names):
    paths = sorted(f"folder/{name}" for name in names)
    runs = run_names(paths)
    assert len(set(runs)) == len(runs) and run_names(list(paths)) == runs
    for run in runs:
        RunSpec(ckpt=run).validate()  # a run name the runs accept: no flag to give for it


@pytest.fixture
def folder(tmp_path):
    """A folder of every kind of entry: images of several formats, a text file, hidden files, a
    broken link, a loop of links, a folder and a link to an image."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.gif", "c.JPG", "._a.png", ".hidden.png", "notes.txt"):
        (folder / name).write_bytes(b"whatever: listing reads no file")
    os.symlink(folder / "nowhere.png", folder / "broken.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    os.symlink(folder / "a.png", folder / "link.png")
    (folder / "sub.png").mkdir()
    return folder


def test_the_listing_takes_images_leaves_hidden_names_out_and_reports_what_is_no_file(folder):
    listing = list_folder(str(folder))
    assert [os.path.basename(path) for path in listing.images] == ["a.png", "b.gif", "c.JPG", "link.png"]
    assert sorted(os.path.basename(path) for path in listing.hidden) == ["._a.png", ".hidden.png"]
    assert {os.path.basename(path): why for path, why in listing.not_files.items()} == {
        "broken.png": "not read: a broken link", "loop.png": "not read: a loop of links",
        "sub.png": "not read: a folder"}


def test_a_folder_takes_every_format_a_single_run_reads():
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm"} <= set(image_extensions())
    assert ".txt" not in image_extensions() and ".pdf" not in image_extensions()  # Pillow writes PDF, never reads it


def test_a_folder_of_only_hidden_images_has_no_image(tmp_path):
    (tmp_path / "._a.png").write_bytes(b"attributes")
    with pytest.raises(InputError, match="no image file in .*hidden names left out"):
        list_folder(str(tmp_path))


def test_an_input_record_is_the_size_and_digest_of_the_bytes(tmp_path):
    data = bytes(range(256)) * 5000  # more than one read
    (tmp_path / "a.png").write_bytes(data)
    assert input_record(tmp_path / "a.png") == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("out_dir, relation", [
    ("in", "is"), ("in/out", "lies inside"), ("in/new/deeper", "lies inside"), (".", "holds"),
    ("link", "is"), ("link/out", "lies inside"), ("out", None), ("in_out", None),
])
def test_the_out_dir_must_lie_apart_from_the_images_links_followed(tmp_path, monkeypatch, out_dir, relation):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    os.symlink(tmp_path / "in", tmp_path / "link")
    if relation is None:
        check_apart(out_dir, "in")
    else:
        with pytest.raises(InputError, match=f"^out_dir {out_dir} {relation} the folder of images in: give an"):
            check_apart(out_dir, "in")


@pytest.mark.parametrize("text", ['{"bytes": 3, "sha256": "abc"}', "{not json", '{"bytes": "3"}', "[]", ""])
def test_a_record_that_cannot_be_read_as_one_is_none(tmp_path, text):
    spec = RunSpec("a", str(tmp_path))
    (tmp_path / "a_input.json").write_text(text)
    assert read_record(spec) == ({"bytes": 3, "sha256": "abc"} if text.startswith('{"bytes": 3') else None)
