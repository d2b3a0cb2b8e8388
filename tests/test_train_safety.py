"""Training keeps its files safe: a signal at any moment (start-up included) saves a
loadable _last, a full disk is one line with nothing half-written, non-finite weights are
never saved, the backup folder is checked first, and the chart spans resumes."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from darknet_py import Darknet, DarknetError, DataError
from darknet_py import files
from darknet_py.nn.weights import read_weights
from darknet_py.train import TrainConfig, Trainer, TrainingDiverged, train
from darknet_py.train.setup import Start, TrainLoader

from .conftest import requires_shared
from .test_train import _setup

pytestmark = requires_shared


def _config(data, cfg, **kw):
    return TrainConfig(str(data), str(cfg), workers=0, chart=None, **kw)


@pytest.mark.parametrize("owner, moment", [(Start, "load"), (TrainLoader, "__call__"),
                                           (Trainer, "run_step")])
def test_sigterm_at_any_moment_saves_a_loadable_last(tmp_path, monkeypatch, owner, moment):
    """During the setup (loading the start weights), when the loader starts, and during
    a step."""
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=6)
    original = owner.__dict__[moment]
    func = original.__func__ if isinstance(original, classmethod) else original
    calls = []

    def signalled(*args):
        if not calls:
            os.kill(os.getpid(), signal.SIGTERM)  # handled at once, by the flag
        calls.append(1)
        return func(*args)

    monkeypatch.setattr(owner, moment, classmethod(signalled)
                        if isinstance(original, classmethod) else signalled)
    result = train(_config(data, cfg))
    assert result.stopped and result.iterations <= 1
    last = tmp_path / "backup" / "tiny_last.weights"
    header, _ = read_weights(last)
    assert header.seen == result.iterations * 4
    Darknet(cfg).load_weights(last)
    assert (tmp_path / "backup" / "tiny_last.pt").exists()


def test_a_full_disk_is_one_line_and_leaves_the_old_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=2)
    train(_config(data, cfg))
    last = tmp_path / "backup" / "tiny_last.weights"
    before = last.read_bytes(), last.with_suffix(".pt").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(DarknetError, match="No space left on device"):
        train(_config(data, cfg, weights=str(last), max_batches=4))
    assert (last.read_bytes(), last.with_suffix(".pt").read_bytes()) == before
    assert not [p for p in (tmp_path / "backup").iterdir() if p.suffix == ".tmp"]


def test_weights_that_go_non_finite_are_never_saved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=1, rate=3e38, burn_in=0)
    with pytest.raises(TrainingDiverged, match="NaN or infinite"):
        train(_config(data, cfg))
    assert not (tmp_path / "backup" / "tiny_last.weights").exists()
    assert not (tmp_path / "backup" / "tiny_final.weights").exists()


@pytest.mark.parametrize("backup", ["a_file", "a_file/under", "/proc/no_such_dir"])
def test_an_unusable_backup_folder_is_refused_before_training(tmp_path, monkeypatch, backup):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("x")
    data, cfg = _setup(tmp_path, max_batches=2)
    with pytest.raises(DataError, match="cannot write checkpoints there"):
        train(_config(data, cfg, backup=backup))


def test_the_chart_history_spans_a_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=3)
    train(_config(data, cfg))
    last = tmp_path / "backup" / "tiny_last.weights"
    trainer = Trainer.from_config(_config(data, cfg, weights=str(last), max_batches=5))
    trainer.run()
    assert [it for it, _ in trainer.state.loss_history] == [1, 2, 3, 4, 5]


def test_a_stale_state_file_is_named_on_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=2)
    train(_config(data, cfg))
    last = tmp_path / "backup" / "tiny_last.weights"
    model = Darknet(cfg)
    model.load_weights(last)
    model.seen += 4  # weights newer than their .pt, as after a failed .pt write
    model.save_weights(last)
    messages = []
    Trainer.from_config(_config(data, cfg, weights=str(last), max_batches=4),
                        on_message=messages.append)
    assert any("start afresh" in m for m in messages)
