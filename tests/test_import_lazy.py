"""The importers load their framework only when called, and name the extra when it is missing.

No framework is needed: a missing one is simulated by ``sys.modules[name] = None``, which
makes ``import name`` raise ImportError.
"""

import subprocess
import sys

import pytest

import refnet


def test_importing_refnet_imports_no_framework():
    code = (
        "import sys, refnet; "
        "print(sorted(m for m in ('torch', 'keras', 'onnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module, call, extra",
    [
        ("torch", lambda: refnet.from_torch(object(), (1,)), "refnet[torch]"),
        ("keras", lambda: refnet.from_keras("model.keras"), "refnet[keras]"),
        ("onnx", lambda: refnet.from_onnx("model.onnx"), "refnet[onnx]"),
    ],
)
def test_a_missing_framework_names_the_extra(monkeypatch, module, call, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=extra.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_unsupported_model_error_is_a_value_error():
    assert issubclass(refnet.UnsupportedModelError, ValueError)
