"""The one registry mechanism: metadata declared once, lazy entries, entry-point plugins, rebuild from specs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from harmscope import registry as registry_mod
from harmscope.errors import HarmscopeError
from harmscope.registry import Registry
from harmscope.types import ComponentSpec


def _reg() -> Registry:
    return Registry("widget", meta_attrs=("color", "sides"))


def test_class_attributes_are_the_metadata():
    reg = _reg()

    @reg.register
    class Square:
        """Four equal sides."""

        name = "square"
        version = "3"
        color = "red"
        sides = 4

    e = reg.get("square")
    assert (e.name, e.version, e.description, e.obj) == ("square", "3", "Four equal sides.", Square)
    assert e.meta == {"color": "red", "sides": 4}
    assert "square" in reg and reg.names() == ["square"]

    @reg.register(name="blob", version="2", description="a shapeless widget", color="grey")
    def blob() -> str:
        return "blob"

    assert reg.get("blob").meta == {"color": "grey"} and reg.get("blob").obj() == "blob"


def test_metadata_declared_twice_is_an_error():
    reg = _reg()
    with pytest.raises(HarmscopeError, match="declare version, color as class attributes, not as decorator"):
        @reg.register(version="2", color="blue")
        class Circle:
            name = "circle"
            version = "1"
            color = "red"

    with pytest.raises(HarmscopeError, match="declare the name as a class attribute"):
        @reg.register("triangle", color="blue")  # the old positional form is gone
        class Triangle:
            name = "triangle"
            version = "1"
            color = "red"

    @reg.register
    class One:
        name = "one"
        version = "1"

    with pytest.raises(HarmscopeError, match="widget 'one' is registered twice"):
        @reg.register
        class Other:
            name = "one"
            version = "1"

    with pytest.raises(HarmscopeError, match="declares no name"):
        @reg.register
        class Nameless:
            version = "1"


def test_lazy_entry_is_imported_on_first_use(tmp_path, monkeypatch):
    (tmp_path / "h2_lazy_widget.py").write_text(textwrap.dedent('''
        class Heavy:
            """A widget whose module is expensive to import."""
            name = "heavy"
            version = "1"
            def __init__(self, size=1):
                self.size = size
        class Wrong:
            name = "wrong"
            version = "9"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "h2_lazy_widget", raising=False)
    reg = _reg()
    reg.register_lazy("heavy", "h2_lazy_widget:Heavy", version="1", description="heavy widget", color="black")
    reg.register_lazy("wrong", "h2_lazy_widget:Wrong", version="1", description="declares another version")
    reg.register_lazy("gone", "h2_no_such_module:X", version="1")
    assert "heavy" in reg and reg.get("heavy").meta == {"color": "black"}
    assert "h2_lazy_widget" not in sys.modules  # looking up and listing import nothing
    assert reg.create({"name": "heavy", "version": "1", "args": {"size": 3}}).size == 3
    assert "h2_lazy_widget" in sys.modules
    with pytest.raises(HarmscopeError, match="registered as version 1 but h2_lazy_widget:Wrong declares version 9"):
        reg.get("wrong").obj  # noqa: B018
    with pytest.raises(HarmscopeError, match="needs 'h2_no_such_module', which is not installed"):
        reg.get("gone").obj  # noqa: B018
    with pytest.raises(HarmscopeError, match="must be 'module:attribute'"):
        reg.register_lazy("bad", "no_colon", version="1")


def test_hf_adapter_is_lazy():
    code = ("import sys; from harmscope.models import MODELS, load_model; load_model('baseline:echo'); "
            "assert 'hf' in MODELS and 'harmscope.models.hf' not in sys.modules; "
            "assert MODELS.get('hf').obj.__name__ == 'HFAdapter' and 'harmscope.models.hf' in sys.modules; "
            "assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


class _EP:
    def __init__(self, name: str, value: str, load):
        self.name, self.value, self.load = name, value, load


def test_membership_loads_entry_point_plugins_first(monkeypatch):
    reg = _reg()

    def load():
        @reg.register
        class Plugged:
            name = "plugged"
            version = "1"
            description = "a widget from a plugin"

    monkeypatch.setattr(registry_mod, "_plugins_loaded", False)
    monkeypatch.setattr(registry_mod, "entry_points", lambda group: [_EP("mine", "mine_pkg", load)]
                        if group == "harmscope.plugins" else [])
    assert "plugged" in reg  # `in` alone, before any get(): the plugin is loaded
    assert reg.get("plugged").description == "a widget from a plugin"


def test_a_broken_plugin_is_one_error_line(monkeypatch):
    def load():
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(registry_mod, "_plugins_loaded", False)
    monkeypatch.setattr(registry_mod, "entry_points", lambda group: [_EP("broken", "broken_pkg", load)])
    with pytest.raises(HarmscopeError, match=r"plugin 'broken' \(broken_pkg\) failed to load: RuntimeError"):
        "x" in _reg()  # noqa: B015


def test_installed_example_plugin_is_seen_by_in():
    code = ("from harmscope.models import MODELS; from harmscope.classifiers.judges import JUDGES; "
            "from harmscope.benchmarks.probes.transforms import TRANSFORMS; "
            "print('myplugin' in MODELS, 'myjudge' in JUDGES, 'mytransform' in TRANSFORMS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if out.stdout.split() != ["True"] * 3:
        import importlib.util

        if importlib.util.find_spec("harmscope_plugin_example") is None:
            pytest.skip("the example plugin is not installed: pip install -e tests/plugin_example")
    assert out.stdout.split() == ["True", "True", "True"], out.stderr


def test_create_rebuilds_and_refuses_another_version():
    reg = _reg()

    @reg.register
    class Dial:
        name = "dial"
        version = "2"

        def __init__(self, level: int = 0):
            self.level = level

        @classmethod
        def from_spec(cls, **args):
            return cls(level=int(args.get("level", 0)) * 10)

    spec = reg.get("dial").spec(level=4)
    assert spec == ComponentSpec(kind="widget", name="dial", version="2", args={"level": 4})
    assert reg.create(spec).level == 40  # from_spec is preferred over the constructor
    with pytest.raises(HarmscopeError, match="'dial' is version 2 here, but the stored spec was made with version 1"):
        reg.create({"name": "dial", "version": "1", "args": {}})
    assert reg.create({"name": "dial", "version": "1", "args": {}}, check_version=False).level == 0
    with pytest.raises(HarmscopeError, match="spec of a judge 'dial' given where a widget is expected"):
        reg.create(ComponentSpec(kind="judge", name="dial", version="2"))
    with pytest.raises(HarmscopeError, match="unknown widget 'nope'"):
        reg.create({"name": "nope", "version": "1"})

    @reg.register
    class Knob:  # no from_spec: built by its constructor
        name = "knob"
        version = "1"

        def __init__(self, level: int = 0):
            self.level = level

    assert reg.create(reg.get("knob").spec(level=4)).level == 4
    with pytest.raises(HarmscopeError, match="widget 'knob' cannot be built from args"):
        reg.create({"name": "knob", "version": "1", "args": {"level": 1, "colour": 2}})


def test_ordered_registry_keeps_registration_order():
    from harmscope.registry import Registry

    by_name, in_order = Registry("thing"), Registry("thing", ordered=True)
    for reg in (by_name, in_order):
        for n in ("zeta", "alpha", "mu"):
            reg.register(lambda: None, name=n)
    assert by_name.names() == ["alpha", "mu", "zeta"]
    assert in_order.names() == ["zeta", "alpha", "mu"]
