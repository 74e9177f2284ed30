"""bench/gpu_carry.py: what bin/gpu-prepare carries to a GPU machine and the check bin/gpu-check makes there.
Found before a GPU run (2026-12-07): transformers 5.25 carried alone over the machine's huggingface_hub 1.33
stopped at `import transformers` (it needs 2.4 or later, which needs httpx2). The machine is played here by
folders of installed-package metadata, as importlib.metadata reads them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_carry.py"


@pytest.fixture(scope="module")
def gpu_carry():
    spec = importlib.util.spec_from_file_location("gpu_carry", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def installed(folder: Path, name: str, version: str, *requires: str) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")


TRANSFORMERS = (
    "huggingface-hub<3.0,>=2.4.0",
    "regex>=2025.10.22",
    "kernels<0.20,>=0.19.1",  # only where asked: not required
    "typer",  # its command line only: not required
    'pytest; extra == "testing"',  # an extra: not required
    'tomli; python_version < "3.0"',  # another Python's: not required
)


def test_preflight_names_what_the_machine_lacks_until_it_is_carried(gpu_carry, tmp_path):
    carried, machine = tmp_path / "carried", tmp_path / "machine"
    installed(carried, "transformers", "5.25.0", *TRANSFORMERS)
    installed(machine, "huggingface_hub", "1.33.0", "httpx<1,>=0.23.0")
    installed(machine, "regex", "2026.1.1")
    installed(machine, "transformers", "5.17.0", "huggingface-hub<2.0,>=1.5.0")  # shadowed: not checked
    path = [str(carried), str(machine)]

    assert gpu_carry.preflight([str(carried)], path) == [
        "transformers 5.25.0 needs huggingface-hub<3.0,>=2.4.0; found 1.33.0"
    ]
    installed(carried, "huggingface_hub", "2.5.0", "httpx2<3,>=2.0.0", "regex>=2025.10.22")
    assert gpu_carry.preflight([str(carried)], path) == [
        "huggingface_hub 2.5.0 needs httpx2<3,>=2.0.0: not installed"
    ]
    installed(carried, "httpx2", "2.17.0")
    assert gpu_carry.preflight([str(carried)], path) == []
    # lm_eval goes without its own requirements (only its HFLM is used; datasets and the rest stay away).
    installed(carried, "lm_eval", "0.4.13", "datasets>=2.16.0", "evaluate>=0.4.0")
    assert gpu_carry.preflight([str(carried)], path) == []


def test_the_carried_set_is_pure_python_and_whole(gpu_carry):
    from packaging.utils import canonicalize_name

    pins, problems = gpu_carry.carry()
    assert problems == []
    carried = {canonicalize_name(pin.split("==")[0]) for pin in pins}
    # What took the first fix: transformers over huggingface_hub 2.x over httpx2.
    assert {"transformers", "peft", "huggingface-hub", "httpx2", "lm-eval", "dill"} <= carried
    assert not carried & {"torch", "typer", "kernels", "tokenizers", "numpy", "safetensors", "regex"}
    dists = gpu_carry.closure()
    binary = {name for name, dist in dists.items() if not gpu_carry._pure(dist)}
    leave = {*binary, *gpu_carry.MACHINE_OWN, *gpu_carry.UNUSED}  # the machine's, or not needed
    for name in carried - {"lm-eval", "dill"}:
        assert gpu_carry._pure(dists[name]), name
        for requirement in gpu_carry._requirements(dists[name]):
            assert canonicalize_name(requirement.name) in carried | leave, (name, str(requirement))


def test_carry_stops_where_the_machine_binary_packages_fall_short(gpu_carry, monkeypatch):
    # tokenizers is binary: it cannot be carried, so the machine's must do; an older one is said here.
    monkeypatch.setitem(gpu_carry.MACHINE, "tokenizers", "0.22.0")
    _, problems = gpu_carry.carry()
    assert problems and all("tokenizers" in p and "cannot be carried" in p for p in problems), problems
    assert any(p.startswith("transformers ") for p in problems), problems


def test_the_command_line_says_every_gap_and_fails(gpu_carry, tmp_path, capsys):
    installed(tmp_path, "transformers", "5.25.0", "no-such-package-anywhere>=1")
    assert gpu_carry.main(["preflight", str(tmp_path)]) == 1
    assert "transformers 5.25.0 needs no-such-package-anywhere>=1: not installed" in capsys.readouterr().err
