"""One vocabulary (deblur_core/vocabulary.py): the engine's modules use it, and the GIMP plug-in, which
stays standard library + gi and so keeps its own copy, must agree with it. The plug-in is read with
``ast`` (importing it needs GIMP)."""
import ast
import os

from helpers import ROOT
from deblur_core import masks, vocabulary
from deblur_core.vocabulary import BLUR_TYPE_MODES, MASKS, MODES, mode_for_blur_type

PLUGIN = os.path.join(ROOT, "plugins", "ai-deblur", "ai-deblur.py")


class _Untranslated(ast.NodeTransformer):
    """N_("text") (marked for translation) -> "text"."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "N_" and len(node.args) == 1:
            return node.args[0]
        return node


def _plugin_assignments():
    """The plug-in's module-level constants: name -> value (literals, translatable strings included)."""
    with open(PLUGIN, encoding="utf-8") as fh:
        tree = _Untranslated().visit(ast.parse(fh.read(), PLUGIN))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found, tree


def test_plugin_procedures_cover_the_modes():
    consts, _ = _plugin_assignments()
    modes = [mode for mode, _label, _blurb in consts["PROCEDURES"].values() if mode is not None]
    assert sorted(modes) == sorted(MODES)  # one procedure per mode, none unknown to the engine


def test_plugin_masks_map_to_engine_masks():
    consts, _ = _plugin_assignments()
    nicks = [nick for nick, _label, _help in consts["MASK_CHOICES"]]
    assert sorted(consts["ENGINE_MASK"]) == sorted(nicks)  # every choice the user sees has an engine mask
    assert set(consts["ENGINE_MASK"].values()) <= set(MASKS)


def test_plugin_mode_names_are_engine_modes():
    """Every ``mode == "..."`` test in the plug-in names a mode the engine knows."""
    _, tree = _plugin_assignments()
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "mode":
            for comp in node.comparators:
                if isinstance(comp, ast.Constant) and isinstance(comp.value, str):
                    named.add(comp.value)
    assert named and named <= set(MODES), named - set(MODES)


def test_plugin_blur_type_words_are_engine_blur_types():
    """The plug-in's words for blur types (layer names) are keyed by the engine's blur types."""
    from deblur_core.classifier import BLUR_TYPES
    _, tree = _plugin_assignments()
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "words" for t in node.targets):
            keys |= set(ast.literal_eval(node.value))
    assert keys and keys <= set(BLUR_TYPES), keys - set(BLUR_TYPES)


def test_blur_type_to_mode():
    from deblur_core.classifier import BLUR_TYPES
    assert set(BLUR_TYPE_MODES) | {"sharp"} == set(BLUR_TYPES)
    assert set(BLUR_TYPE_MODES.values()) <= set(MODES)
    assert [mode_for_blur_type(t) for t in ("motion", "defocus", "gaussian", "shake", "sharp", None)] == \
        ["motion", "focus", "focus", "shake", "sharp", "sharp"]


def test_engine_and_command_line_use_the_vocabulary():
    from deblur_core import cli, pipeline
    from deblur_core.worker import protocol
    assert set(masks.MASK_KINDS) == set(MASKS)
    assert tuple(pipeline.MODES) == MODES and protocol.MODES is MODES and protocol.MASKS is MASKS
    sub = next(a for a in cli._parser()._actions if a.dest == "command").choices["deblur"]
    choices = {a.dest: a.choices for a in sub._actions}
    assert list(choices["mode"]) == list(MODES) and list(choices["mask"]) == list(MASKS)
    assert vocabulary.__all__
