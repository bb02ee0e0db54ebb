"""The Python API: the names ``avemo`` exports work as the README and their docstrings say.

Every public name carries an example in its docstring; this file runs them all (with a run trained by the
test session, a clip of its data and a short long clip), so an example that no longer holds fails here.
"""

from __future__ import annotations

import doctest
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import avemo
from avemo.errors import AvemoError
from avemo.synth import SynthConfig, synthesize, synthesize_long
from tests.conftest import built_once

SMALL = SynthConfig(width=96, height=72)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """One actor, two clips: enough for extract's example."""
    return built_once(tmp_path_factory, "api-tiny", lambda root: synthesize(root, actors=1, clips_per_actor=2,
                                                                              seed=5, config=SMALL))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """8 s of actor 9 (whom the learnt run never saw) changing emotion."""
    folder = built_once(tmp_path_factory, "api-long", lambda root: synthesize_long(root / "long.mp4", 8, seed=2,
                                                                                     actor=9, config=SMALL))
    return folder / "long.mp4"


@pytest.fixture
def examples_globals(learnt_run, fusion_cache, tiny_data, long_clip, tmp_path) -> dict:
    run_dir = tmp_path / "learnt"
    shutil.copytree(learnt_run, run_dir)  # evaluate writes its reports into the run: into a copy
    clip = fusion_cache.parent / "data" / "Actor_01" / "01-01-01-01-01-01-01.mp4"
    assert clip.is_file()
    rec = avemo.Run(run_dir).recognizer(device="cpu")
    return {"avemo": avemo, "run_dir": run_dir, "cache_dir": fusion_cache, "data_dir": tiny_data, "clip": clip,
            "long_clip": long_clip, "tmp": tmp_path, "rec": rec}


def _examples(obj: object, name: str) -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(recurse=True, exclude_empty=True)
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    return [t for t in finder.find(obj, name, module=module or False, globs={}) if t.examples]


def test_every_public_name_has_a_docstring_with_an_example():
    missing = [name for name in avemo.__all__ if not _examples(getattr(avemo, name), name)]
    assert not missing, f"public names without an example in their docstring: {missing}"


def test_the_docstring_examples_of_every_public_name_run(examples_globals):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    ran, seen = 0, set()
    for name in avemo.__all__:
        for test in _examples(getattr(avemo, name), name):
            if test.name in seen:
                continue
            seen.add(test.name)
            test.globs = dict(examples_globals)
            runner.run(test, out=lambda text: print(text, end=""))
            ran += len(test.examples)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed (printed above)"
    assert ran >= 20


def test_import_avemo_loads_no_torch_until_a_model_is_needed():
    code = "import sys, avemo; avemo.TrainConfig; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_readme_calls_work_as_written(learnt_run, fusion_cache, long_clip, tmp_path):
    """The README's Python section, line by line, on the test session's data."""
    run = avemo.Run(learnt_run)
    rec = run.recognizer(device="auto")
    clips = sorted((fusion_cache.parent / "data" / "Actor_02").glob("*.mp4"))[:2]
    results = rec.predict([str(c) for c in clips])
    assert isinstance(results, avemo.Predictions) and [p.path for p in results] == clips
    for p in results:
        assert p.ok and p.label == max(p.probabilities, key=p.probabilities.get)
        assert list(p.probabilities) == [c for c, _ in p.ranked] and set(p.probabilities) == set(run.classes)
        assert p.box is not None and p.box.source == "center"
    timeline = rec.timeline(long_clip, hop=0.5)
    assert isinstance(timeline, avemo.Timeline) and all(isinstance(w, avemo.Window) for w in timeline)
    starts = [w.start for w in timeline]
    assert starts == [0.5 * k for k in range(len(starts))]
    assert timeline.to_json(tmp_path / "t.json") == (tmp_path / "t.json").read_text()
    assert json.loads((tmp_path / "t.json").read_text())["hop"] == 0.5
    rows = timeline.to_csv(tmp_path / "t.csv").splitlines()
    assert len(rows) == len(timeline) + 1 and rows[0].startswith("start,end,top," + ",".join(run.classes))


def test_results_are_plain_data_and_dataframes_where_pandas_is(learnt_run, fusion_cache):
    rec = avemo.Run(learnt_run).recognizer(device="cpu")
    clip = fusion_cache.parent / "data" / "Actor_03" / "01-01-01-01-01-01-03.mp4"
    results = rec.predict([clip, clip.with_name("nowhere.mp4")])
    good, bad = results.to_dicts(top=2)
    assert json.loads(json.dumps(good)) == good  # plain data, through JSON unchanged
    assert good["path"] == str(clip) and len(good["probabilities"]) == 2 and good["error"] is None
    assert bad["label"] is None and bad["probabilities"] == {} and "not found" in bad["error"]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(AvemoError, match="pip install pandas"):
            results.to_dataframe()
    else:
        frame = results.to_dataframe()
        assert list(frame["label"])[0] == good["label"] and len(frame) == 2


def test_errors_users_cause_are_avemo_errors_naming_what_to_fix(tmp_path, learnt_run):
    with pytest.raises(AvemoError, match="no such folder.*avemo train"):
        avemo.Run(tmp_path / "nowhere")
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(AvemoError, match="no config.json"):
        avemo.Run(tmp_path / "not-a-run")
    with pytest.raises(AvemoError, match="not an avemo feature cache"):
        avemo.train(tmp_path, run=tmp_path / "run")
    with pytest.raises(AvemoError, match="--crop landmarks needs --landmarks"):
        avemo.extract(tmp_path, cache=tmp_path / "cache", crop="landmarks")
    with pytest.raises(AvemoError, match="--crop 'square': choose face"):
        avemo.extract(tmp_path, cache=tmp_path / "cache", crop="square")
    assert not (tmp_path / "cache").exists()  # refused before anything was written
    rec = avemo.Run(learnt_run).recognizer(device="cpu")
    with pytest.raises(AvemoError, match="--hop -1"):
        rec.timeline(tmp_path / "x.mp4", hop=-1)
