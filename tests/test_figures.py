"""reproduction.figures: what Figures 3 and 4 say of how far a reused run went, here of a run
longer than asked, alone and beside a run of another length (and the table's row of the same
run, reproduction.table, saying the same)."""

import reproduction.figures
import reproduction.table
from recovery import prepare_observation
from reproduction import sweep
from reproduction.states import State
from sweep_helpers import tiny_run


def recovered_row(monkeypatch, specs, states):
    """The last-iterate row of Figure 3 drawn from ``runs`` (the third; the final answer's is below
    it): its label and its tiles' captions."""
    drawn = {}
    monkeypatch.setattr(reproduction.figures, "save_grid", lambda paths, rows, labels, titles: drawn.update(
        label=labels[2], captions=[caption for _, caption in rows[2]]))
    observations = [prepare_observation(spec.config) for spec in specs]
    reproduction.figures.draw_recovery_grid("unused", specs, states, observations)
    return drawn["label"], drawn["captions"]


def test_figures_and_table_say_how_far_a_reused_longer_run_went(tmp_path, monkeypatch):
    # "a" ran 4 iterations, "b" 2; both are then asked for 2: "a" is reused as it is.
    sweep.execute_runs([tiny_run(tmp_path, "a", num_iter=4), tiny_run(tmp_path, "b", num_iter=2)], progress=False, log=lambda m: None)
    specs = [tiny_run(tmp_path, "a", num_iter=2), tiny_run(tmp_path, "b", num_iter=2)]
    states = [sweep.load_state(spec) for spec in specs]
    assert [sweep.run_state(spec)[0] for spec in specs] == [State.COMPLETE] * 2
    assert [state.last_iteration for state in states] == [3, 1]

    label, captions = recovered_row(monkeypatch, specs[:1], states[:1])
    assert label.endswith("last of 4 it.") and captions[0].endswith(" dB")
    label, captions = recovered_row(monkeypatch, specs, states)  # mixed lengths: each tile says its own
    assert label.endswith("last iterate") and [c.split(" dB ")[1] for c in captions] == ["(4 it.)", "(2 it.)"]

    clean = prepare_observation(specs[0].config).clean
    row = reproduction.table.run_rows(specs[0], states[0], clean)[0]
    assert (row["at_iteration"], row["iterations"], row["status"]) == (3, 4, "done")
    line = reproduction.table.results_markdown([row], 4, []).splitlines()[-1]  # the row in "Every number"
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert (cells[4], cells[7]) == ("last (it. 3)", "4")  # the iterate, and the iterations (not "4 of 2")
