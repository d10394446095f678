"""model-missing, model-corrupt and load-spike: parameters, describe(), and their changes.

The model faults are exercised on real model directories (the tiny Llama of ``gameday
model make-tiny``) and checked with the simulator's own loader, which reads them as vLLM
0.32 does: the damage must fail it with vLLM's error (or, for flipped bytes, go unnoticed
as in vLLM), the revert must pass it again, byte for byte.
The server's supervisor is a stand-in that counts restarts; the scenarios run the real
one (tests/e2e/test_model_and_load_scenarios.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from safetensors import SafetensorError

from gameday.core.changes import ChangeSet
from gameday.core.errors import ComponentUnreachable, InjectionError, ScenarioError
from gameday.core.events import EventBus
from gameday.core.journal import Journal, outstanding_undos, revert_outstanding
from gameday.injectors.base import FaultContext, LoadControl
from gameday.injectors.load_spike import LoadSpike, LoadSpikeSpec
from gameday.injectors.local.model_corrupt import ModelCorrupt, ModelCorruptSpec
from gameday.injectors.local.model_missing import ModelMissing, ModelMissingSpec
from gameday.load import LoadConfig, LoadDriver
from gameday.plugins import catalog, load_builtins
from gameday.scenario.loader import parse_scenario
from gameday.sim.model import load_weights, read_model_dir
from gameday.targets.base import TargetContext
from gameday.targets.local.spec import LocalTargetSpec
from gameday.targets.local.target import LocalTarget
from tests.support.models import SHARD_1, SHARD_2, tiny_model

RUN_ID = "run-unit"
WITH_MODEL_DIR = ["gameday", "sim", "serve", "--port", "{port}", "--model-dir", "{model_dir}"]


# -- stand-ins ---------------------------------------------------------------------------


class CountingSupervisor:
    """Counts planned restarts; the real supervisor's are tested on their own."""

    def __init__(self) -> None:
        self.restarts = 0

    def restart(self, before_start: Callable[[], None] | None = None, grace: float = 10.0) -> None:
        del grace
        assert before_start is None  # the file is changed before, not during, the restart
        self.restarts += 1


class RecordingLoad:
    """A LoadControl that records what a fault asks of the load."""

    def __init__(self, config: LoadConfig) -> None:
        self._config = config
        self.calls: list[tuple[Any, ...]] = []

    @property
    def config(self) -> LoadConfig:
        return self._config

    def set_users(self, users: int, spawn_rate: float | None = None) -> None:
        self.calls.append(("users", users, spawn_rate))

    def set_shape(self, prompt_tokens: int, max_tokens: int) -> None:
        self.calls.append(("shape", prompt_tokens, max_tokens))


class Rig:
    """A local target with a model directory, a journal, and a fault context."""

    def __init__(
        self, tmp_path: Path, *, command: list[str] | None = None, model: bool = True
    ) -> None:
        self.model_dir = tmp_path / "model"
        if model:
            tiny_model(self.model_dir, shards=2)
        self.intact = {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (self.model_dir.iterdir() if model else ())
        }
        self.journal_path = tmp_path / "journal.jsonl"
        self.journal = Journal(self.journal_path, RUN_ID)
        bus = EventBus()
        stop = threading.Event()
        spec = LocalTargetSpec.model_validate(
            {"server": {"command": command or WITH_MODEL_DIR, "model": {"shards": 2}}}
        )
        self.target = LocalTarget(
            spec,
            TargetContext(
                scenario="s",
                run_id=RUN_ID,
                journal=self.journal,
                bus=bus,
                scenario_dir=tmp_path,
                artifacts=tmp_path / "artifacts",
                stop=stop,
            ),
        )
        self.target.model_dir = self.model_dir if model else None
        self.supervisor = CountingSupervisor()
        self.target.supervisor = self.supervisor  # type: ignore[assignment]
        self.ctx = FaultContext(
            scenario="s",
            bus=bus,
            changes=ChangeSet(self.journal, "s", "fault/f"),
            stop=stop,
            artifacts=tmp_path / "artifacts",
        )

    def actual_sha256(self) -> dict[str, str]:
        """Every file of the model directory now (hidden ones, the faults' copies, too)."""
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in self.model_dir.iterdir()
        }

    def load_model(self) -> None:
        """What the simulator does at startup, as vLLM: the config, then every weight file."""
        spec = read_model_dir(self.model_dir)
        assert load_weights(spec, bandwidth=2**40, cancel=threading.Event()) is not None


def missing(**params: Any) -> ModelMissingSpec:
    return ModelMissingSpec.model_validate({"name": "f", "type": "model-missing", **params})


def corrupt(**params: Any) -> ModelCorruptSpec:
    return ModelCorruptSpec.model_validate({"name": "f", "type": "model-corrupt", **params})


def spike(**params: Any) -> LoadSpikeSpec:
    return LoadSpikeSpec.model_validate({"name": "f", "type": "load-spike", **params})


# -- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file", ["/etc/passwd", "../model-00001.safetensors", "a/../../b", "", "d/"]
)
def test_model_file_must_be_inside_the_model_directory(file: str) -> None:
    with pytest.raises(ValidationError, match="file must be a path inside the model directory"):
        missing(file=file)


def test_model_file_params_defaults() -> None:
    spec = missing()
    assert (spec.file, spec.restart_server) == (None, True)
    assert corrupt(file="sub/model.safetensors").file == "sub/model.safetensors"
    c = corrupt()
    assert (c.mode, c.offset, c.length) == ("truncate", None, 64)
    assert corrupt(offset="4Mi").offset == 4 * 2**20


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "header", "offset": 10}, "offset does not apply to mode header"),
        ({"mode": "truncate", "length": 8}, "length applies to mode flip only"),
        ({"length": 8}, "length applies to mode flip only, not truncate"),
        ({"mode": "flip", "length": 0}, "greater than or equal to 1"),
        ({"mode": "shred"}, "'truncate', 'header' or 'flip'"),
        ({"offset": "lots"}, "lots"),
        ({"bogus": 1}, "Extra inputs are not permitted"),
    ],
)
def test_model_corrupt_params_are_checked(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        corrupt(**params)


def test_load_spike_params() -> None:
    spec = spike()
    assert (spec.users, spec.spawn_rate, spec.prompt_tokens, spec.max_tokens) == (
        64,
        None,
        1024,
        None,
    )
    for bad in ({"users": 0}, {"users": 5001}, {"spawn_rate": 0}, {"prompt_tokens": 0}):
        with pytest.raises(ValidationError):
            spike(**bad)


def test_scenario_errors_point_at_the_fault_field() -> None:
    text = (Path(__file__).parents[2] / "scenarios/local/model-corrupt.yaml").read_text()
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text.replace("mode: truncate", "mode: shred"), "s.yaml", catalog())
    (issue,) = caught.value.issues
    assert "faults[0].mode" in str(issue)


def test_describe_says_what_will_happen() -> None:
    assert "move the first weight file of the index" in ModelMissing.describe(missing())
    assert "restart the server" in ModelMissing.describe(missing())
    assert "restart" not in ModelMissing.describe(missing(restart_server=False))
    assert "x.safetensors" in ModelMissing.describe(missing(file="x.safetensors"))
    assert "truncate the first weight file of the index at the middle" in ModelCorrupt.describe(
        corrupt()
    )
    assert "incomplete metadata" in ModelCorrupt.describe(corrupt())
    assert "header too large" in ModelCorrupt.describe(corrupt(mode="header"))
    flip = ModelCorrupt.describe(corrupt(mode="flip"))
    assert "invert 64 bytes at the middle" in flip and "unnoticed: no checksum" in flip
    assert "offset 100" in ModelCorrupt.describe(corrupt(offset=100))
    text = LoadSpike.describe(spike(users=96, spawn_rate=16, max_tokens=64))
    assert "96 users (16/s)" in text and "~1024-token prompts" in text and "max_tokens 64" in text
    assert "the load's own prompts" in LoadSpike.describe(spike(prompt_tokens=None))


def test_the_faults_are_registered() -> None:
    load_builtins()
    from gameday.injectors.base import faults

    assert faults.lookup("local", "model-missing") is ModelMissing
    assert faults.lookup("local", "model-corrupt") is ModelCorrupt
    assert faults.lookup("local", "load-spike") is LoadSpike
    assert ModelMissing.runbook == ModelCorrupt.runbook == "InferenceModelLoading"


# -- model-missing ---------------------------------------------------------------------


def test_model_missing_moves_the_first_shard_and_revert_restores_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    fault = ModelMissing(missing(), rig.target, rig.ctx)
    details = fault.apply()
    shard = rig.model_dir / SHARD_1
    assert details["file"] == str(shard)
    assert not shard.exists()
    assert rig.supervisor.restarts == 1
    with pytest.raises(
        FileNotFoundError,
        match=re.escape(f"Weight files referenced in index but missing: {{'{shard}'}}"),
    ):
        rig.load_model()
    fault.revert()
    assert rig.actual_sha256() == rig.intact  # every file back, nothing left over
    rig.load_model()


def test_model_missing_takes_the_only_file_of_an_unsharded_model(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    for name in ("model.safetensors.index.json", SHARD_2):
        (rig.model_dir / name).unlink()
    (rig.model_dir / SHARD_1).rename(rig.model_dir / "model.safetensors")
    fault = ModelMissing(missing(), rig.target, rig.ctx)
    assert fault.apply()["file"] == str(rig.model_dir / "model.safetensors")
    with pytest.raises(
        RuntimeError, match=re.escape(f"Cannot find any model weights with `{rig.model_dir}`")
    ):
        rig.load_model()
    fault.revert()
    rig.load_model()


@pytest.mark.parametrize("fault_class", [ModelMissing, ModelCorrupt])
def test_the_undo_is_on_disk_before_the_file_moves(
    fault_class: type[ModelMissing | ModelCorrupt], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = Rig(tmp_path)
    seen: list[int] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        seen.append(len(outstanding_undos(rig.journal_path)))  # read back from disk
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)  # the os module both faults use
    spec = fault_class.Params.model_validate(
        {"name": "f", "type": "t", "file": SHARD_2, "restart_server": False}
    )
    fault_class(spec, rig.target, rig.ctx).apply()  # type: ignore[arg-type]
    assert seen == [1]
    assert rig.supervisor.restarts == 0
    shard = rig.model_dir / SHARD_2
    changed = not shard.exists() or rig.actual_sha256()[SHARD_2] != rig.intact[SHARD_2]
    assert changed


def test_cleanup_after_a_crash_puts_the_file_back(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    ModelMissing(missing(), rig.target, rig.ctx).apply()
    rig.journal.close()  # the harness dies here; gameday cleanup reads its journal
    load_builtins()
    (outcome,) = revert_outstanding(rig.journal_path, RUN_ID)
    assert outcome.ok, outcome.message
    assert rig.actual_sha256() == rig.intact


def test_model_faults_need_a_model_directory(tmp_path: Path) -> None:
    rig = Rig(tmp_path, model=False)
    for fault in (
        ModelMissing(missing(), rig.target, rig.ctx),
        ModelCorrupt(corrupt(), rig.target, rig.ctx),
    ):
        with pytest.raises(InjectionError, match=r"no model directory: give target\.local\.server"):
            fault.apply()
    assert len(rig.ctx.changes) == 0


def test_model_faults_refuse_a_server_that_does_not_use_the_directory(tmp_path: Path) -> None:
    rig = Rig(tmp_path, command=["gameday", "sim", "serve", "--port", "{port}"])
    with pytest.raises(InjectionError, match="does not pass its model directory"):
        ModelMissing(missing(), rig.target, rig.ctx).apply()


def test_an_engine_that_passes_the_directory_itself_needs_no_command(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.target.spec = LocalTargetSpec.model_validate({"server": {"model": {"shards": 2}}})
    assert rig.target.spec.server.command is None  # engine sim: it passes --model-dir
    assert ModelMissing(missing(), rig.target, rig.ctx).apply()["file"].endswith(SHARD_1)


def test_model_faults_name_an_unknown_file(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    with pytest.raises(InjectionError, match=r"nope\.safetensors is not a file"):
        ModelMissing(missing(file="nope.safetensors"), rig.target, rig.ctx).apply()
    assert len(rig.ctx.changes) == 0


def test_the_first_file_the_index_names_is_taken(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    (rig.model_dir / "a-stray.safetensors").write_bytes(b"not in the index")
    details = ModelMissing(missing(), rig.target, rig.ctx).apply()
    assert details["file"].endswith(SHARD_1)


def test_without_an_index_the_first_safetensors_file_is_taken(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    (rig.model_dir / "model.safetensors.index.json").unlink()
    (rig.model_dir / "a-stray.safetensors").write_bytes(b"x")
    details = ModelMissing(missing(), rig.target, rig.ctx).apply()
    assert details["file"].endswith("a-stray.safetensors")


def test_a_model_directory_without_weights_is_refused(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    for name in ("model.safetensors.index.json", SHARD_1, SHARD_2):
        (rig.model_dir / name).unlink()
    with pytest.raises(InjectionError, match="has no weight file"):
        ModelMissing(missing(), rig.target, rig.ctx).apply()
    assert len(rig.ctx.changes) == 0


# -- model-corrupt ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "text"),
    [
        (
            {},
            SafetensorError,
            "^Error while deserializing header: incomplete metadata, file not fully covered$",
        ),
        ({"mode": "truncate", "offset": 4}, SafetensorError, "header too small"),
        (
            {"mode": "header"},
            SafetensorError,
            "^Error while deserializing header: header too large$",
        ),
        ({"mode": "header", "file": SHARD_2}, SafetensorError, "header too large"),
    ],
)
def test_model_corrupt_fails_the_real_loader_and_revert_restores_every_byte(
    tmp_path: Path, params: dict[str, Any], error: type[Exception], text: str
) -> None:
    rig = Rig(tmp_path)
    fault = ModelCorrupt(corrupt(**params), rig.target, rig.ctx)
    details = fault.apply()
    assert rig.supervisor.restarts == 1
    assert Path(details["intact copy"]).is_file()
    with pytest.raises(error, match=text):
        rig.load_model()
    fault.revert()
    assert rig.actual_sha256() == rig.intact
    assert not Path(details["intact copy"]).exists()
    rig.load_model()


@pytest.mark.parametrize("params", [{}, {"file": SHARD_2, "offset": 2**19, "length": 1}])
def test_flipped_bytes_go_unnoticed_as_in_vllm_and_the_fault_says_so(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    rig = Rig(tmp_path)
    fault = ModelCorrupt(corrupt(mode="flip", **params), rig.target, rig.ctx)
    details = fault.apply()
    shard = params.get("file", SHARD_1)
    assert rig.actual_sha256()[shard] != rig.intact[shard]
    assert details["noticed"].startswith("no: vLLM keeps no checksum")
    rig.load_model()  # loads: nothing checks the bytes
    fault.revert()
    assert rig.actual_sha256() == rig.intact


def test_model_corrupt_refuses_an_offset_past_the_end(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    with pytest.raises(InjectionError, match="beyond the end"):
        ModelCorrupt(corrupt(offset="1Gi"), rig.target, rig.ctx).apply()
    assert len(rig.ctx.changes) == 0
    assert rig.actual_sha256() == rig.intact


# -- load-spike ------------------------------------------------------------------------


def _spike_rig(tmp_path: Path, load: LoadControl | None) -> tuple[LoadSpike, LoadSpikeSpec]:
    rig = Rig(tmp_path, model=False)
    rig.ctx.load = load
    spec = spike(users=96, prompt_tokens=512, max_tokens=64)
    return LoadSpike(spec, rig.target, rig.ctx), spec


def test_load_spike_raises_the_load_then_restores_it(tmp_path: Path) -> None:
    load = RecordingLoad(LoadConfig(host="http://x", users=8, prompt_tokens=32, max_tokens=16))
    fault, _ = _spike_rig(tmp_path, load)
    details = fault.apply()
    # the long prompts first, so every added user sends them
    assert load.calls == [("shape", 512, 64), ("users", 96, 96.0)]
    assert details["users"] == "8 -> 96"
    load.calls.clear()
    fault.revert()
    assert load.calls == [("users", 8, 96.0), ("shape", 32, 16)]


def test_load_spike_keeps_what_it_is_not_told_to_change(tmp_path: Path) -> None:
    load = RecordingLoad(LoadConfig(host="http://x", users=4, prompt_tokens=20, max_tokens=30))
    rig = Rig(tmp_path, model=False)
    rig.ctx.load = load
    LoadSpike(spike(users=10, spawn_rate=2, prompt_tokens=None), rig.target, rig.ctx).apply()
    assert load.calls == [("shape", 20, 30), ("users", 10, 2.0)]


def test_load_spike_revert_when_the_load_is_gone(tmp_path: Path) -> None:
    load = RecordingLoad(LoadConfig(host="http://x", users=8))
    fault, _ = _spike_rig(tmp_path, load)
    fault.apply()

    def gone(*args: Any) -> None:
        raise ComponentUnreachable("the load runner is gone (exit code -9)")

    load.set_users = gone  # type: ignore[method-assign,assignment]
    assert "the load runner is gone" in fault.revert()["load"]


def test_load_spike_without_a_load_section_says_so(tmp_path: Path) -> None:
    fault, _ = _spike_rig(tmp_path, None)
    with pytest.raises(InjectionError, match="has no load: section"):
        fault.apply()
    assert fault.revert() == {}  # nothing was changed, nothing to restore


def test_the_load_driver_is_a_load_control() -> None:
    driver: LoadControl = LoadDriver(LoadConfig(host="http://x", users=3), lambda sample: None)
    assert driver.config.users == 3
