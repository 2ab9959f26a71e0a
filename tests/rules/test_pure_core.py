"""The rules core works on text and a personality handed to it: no files, no observatory package."""

from __future__ import annotations

from crds_async.rules.evaluate import Evaluator
from crds_async.rules.model import build_context
from crds_async.rules.parse import parse_checked_mapping
from crds_async.rules.personality import GENERIC, Personality

TEXTS = {
    "demo_0001.pmap": """header = {
    'mapping' : 'PIPELINE', 'name' : 'demo_0001.pmap', 'derived_from' : 'none',
    'observatory' : 'DEMO', 'parkey' : ('INSTRUME',), 'sha1sum' : 'none',
}
selector = {'CAM' : 'demo_cam_0001.imap'}
""",
    "demo_cam_0001.imap": """header = {
    'mapping' : 'INSTRUMENT', 'name' : 'demo_cam_0001.imap', 'derived_from' : 'none',
    'instrument' : 'CAM', 'parkey' : ('REFTYPE',), 'sha1sum' : 'none',
}
selector = {'dark' : 'demo_cam_dark_0001.rmap', 'flat' : 'N/A'}
""",
    "demo_cam_dark_0001.rmap": """header = {
    'mapping' : 'REFERENCE', 'name' : 'demo_cam_dark_0001.rmap', 'derived_from' : 'none',
    'observatory' : 'DEMO', 'instrument' : 'CAM', 'filekind' : 'DARK',
    'parkey' : (('DETECTOR',), ('DATE-OBS', 'TIME-OBS')), 'sha1sum' : 'none',
}
selector = Match({
    'A' : UseAfter({'2000-01-01 00:00:00' : 'old_dark.fits', '2010-01-01 00:00:00' : 'new_dark.fits'}),
})
""",
}


def _context():
    def load(name: str):
        return parse_checked_mapping(TEXTS[name], name, verify_checksum=False)

    return build_context(load("demo_0001.pmap"), "demo", load)


def test_a_context_built_from_text_answers():
    evaluator = Evaluator(_context(), GENERIC)
    header = {"INSTRUME": "CAM", "DETECTOR": "A", "DATE-OBS": "2012-05-01", "TIME-OBS": "00:00:00"}
    assert evaluator.evaluate(header) == {"dark": "new_dark.fits", "flat": "NOT FOUND n/a"}
    assert evaluator.evaluate(dict(header, **{"DATE-OBS": "2005-05-01"}))["dark"] == "old_dark.fits"


def test_the_personality_handed_in_is_the_one_used():
    """A personality that renames a dataset keyword to the rules' parameter makes the rules see it."""

    class Renaming(Personality):
        observatory = "demo"

        def to_parkeys(self, header):
            return {("DETECTOR" if k == "DET" else k): v for k, v in header.items()}

    header = {"INSTRUME": "CAM", "DET": "A", "DATE-OBS": "2012-05-01", "TIME-OBS": "00:00:00"}
    assert Evaluator(_context(), Renaming()).evaluate(header)["dark"] == "new_dark.fits"
    assert Evaluator(_context(), GENERIC).evaluate(header)["dark"].startswith("NOT FOUND")


def test_one_instruments_odd_rules_fail_only_that_instrument():
    texts = dict(TEXTS)
    texts["demo_0001.pmap"] = texts["demo_0001.pmap"].replace(
        "{'CAM' : 'demo_cam_0001.imap'}", "{'CAM' : 'demo_cam_0001.imap', 'SPEC' : 'demo_spec_0001.imap'}")
    texts["demo_spec_0001.imap"] = texts["demo_cam_0001.imap"].replace("'CAM'", "'SPEC'").replace(
        "demo_cam_0001.imap", "demo_spec_0001.imap").replace("('REFTYPE',)", "5")

    def load(name: str):
        return parse_checked_mapping(texts[name], name, verify_checksum=False)

    ctx = build_context(load("demo_0001.pmap"), "demo", load)
    assert set(ctx.instruments) == {"cam"} and "demo_spec_0001.imap" in str(ctx.load_errors["spec"])
