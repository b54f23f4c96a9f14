"""Rendering details of a Report: headline cards that fit, download names, Arrow-safe tables."""

from __future__ import annotations

import dataclasses
import json

import pyarrow
import streamlit

from dashboard import render
from optimizer_core import summary as S
from optimizer_core.history import HistoryStore
from optimizer_core.views.tables import tuning_table
from tests.core.report_factory import make_report
from tests.dashboard.conftest import assert_clean, new_app, texts, upload


def test_headline_values_are_short_and_the_exact_numbers_are_in_the_help():
    assert [render._ratio(x) for x in (2.834, 15.57, 1947.97)] == ["2.83×", "15.6×", "1,948×"]
    assert render._compact_rate(1_234_567) == "1.23M/s"
    report = make_report("binary")
    cards = render._headline_cards(report, S.headline_values(report))
    assert [c[0] for c in cards] == list(S.HEADLINE_LABELS.values())
    for label, value, detail, _help in cards:
        assert len(value) <= 9, (label, value)  # fits a card of render.CARD_WIDTH_PX
        assert detail is None or len(detail) <= 28, (label, detail)
    speedup, _, size, *_ = cards
    assert speedup[3].startswith(f"{S.headline_values(report)['speedup_batch1']:,.2f}×")
    assert " MB" in size[3]  # both file sizes, exactly, in the tooltip


def test_headline_cards_on_the_page_are_short_with_help(history_db):
    HistoryStore(history_db).save(dataclasses.replace(make_report("binary"), run_id="run-a"), model_name="m.json")
    at = new_app()
    at.query_params["run"] = "run-a"
    at.run()
    assert_clean(at)
    assert len(at.metric) == 5  # the five headline cards: the checks below are vacuous without them
    assert all(m.proto.help for m in at.metric)
    assert all(len(m.value) <= 9 for m in at.metric), [m.value for m in at.metric]


def test_downloads_use_the_names_of_report_json_and_one_zip_holds_the_out_folder(history_db, monkeypatch):
    # QA: report.json's snippets load "rounds-50.onnx" while the button saved "rounds-50-<run>.onnx"
    import io
    import zipfile

    report = dataclasses.replace(make_report("binary"), run_id="run-a")
    report = dataclasses.replace(report, artifacts={**{v.artifact: b"onnx" for v in report.variants if v.artifact},
                                                    "drift.csv": b"x"})
    HistoryStore(history_db).save(report, model_name="m.json")
    buttons: dict[str, tuple] = {}
    original = streamlit.download_button

    def recording(label, data, **kwargs):
        buttons[label] = (kwargs["file_name"], data)
        return original(label, data, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recording)
    at = new_app()
    at.query_params["run"] = "run-a"
    at.run()
    assert_clean(at)
    for v in report.variants:
        if v.artifact:
            assert buttons[v.artifact][0] == v.artifact
    assert buttons["drift.csv"][0] == "drift.csv"
    assert buttons["report.json"][0] == "inference-report-run-a.json"
    file_name, data = buttons["Download everything (.zip)"]
    assert file_name == "inference-report-run-a.zip"
    with zipfile.ZipFile(io.BytesIO(data())) as zf:
        names = set(zf.namelist())
        stored = set(report.artifacts) | {"report.json", "report.html"}
        assert names == stored
        assert zf.read("drift.csv") == b"x"


def test_tuning_settings_columns_are_text(monkeypatch):
    from optimizer_core.report import Recommendation

    def row(name, precision, batch, p50, settings):
        return {"name": name, "variant": precision, "precision": precision, "batch_size": batch, "p50_us": p50,
                "max_abs": 0.0 if precision == "native" else 1e-7, "final": True, "settings": settings,
                "is_default": name.endswith("defaults")}

    ort = {"intra_op_threads": 1, "allow_spinning": False, "graph_optimization": "all"}
    candidates = [row("native", "native", 1, 100.0, {}), row("fp32 t1", "fp32", 1, 8.0, ort),
                  row("native", "native", 256, 300.0, {}), row("fp32 t1", "fp32", 256, 900.0, ort)]
    report = dataclasses.replace(make_report("binary"), tuning={"candidates": candidates},
                                 recommendation=Recommendation(by_batch_size={"1": "fp32", "256": "native"},
                                                               reason="test", details={},
                                                               configuration_by_batch_size={"1": "fp32 t1",
                                                                                            "256": "native"}))
    table = tuning_table(report)
    assert not table.empty
    for column in ("threads", "spinning", "graph level"):
        assert all(isinstance(v, str) for v in table[column]), (column, table[column].tolist())
    assert set(table["spinning"]) <= {"on", "off", "-"}
    pyarrow.Table.from_pandas(table)  # a column mixing numbers and "-" raised ArrowInvalid / ArrowTypeError


def test_a_busy_machine_and_skipped_metrics_are_warnings_not_footnotes(history_db):
    report = make_report("binary")
    busy = "the machine was busy while timing: other processes kept about 1.6 of its 2 cores busy on average"
    skipped = "metrics skipped: none of the values in 'label' ('A', 'B') is one of the model's classes (0, 1)"
    report = dataclasses.replace(report, run_id="run-busy", notes=(*report.notes, busy, skipped),
                                 data={**report.data, "target": "label"},
                                 variants=tuple(dataclasses.replace(v, metrics={}) for v in report.variants))
    HistoryStore(history_db).save(report, model_name="m.json")
    at = new_app()
    at.query_params["run"] = "run-busy"
    at.run()
    assert_clean(at)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("The machine was busy while timing") for w in warnings)
    assert any(w.startswith("Metrics skipped: none of the values in 'label'") for w in warnings)
    assert any("No metrics for target **label**: metrics skipped" in c.value for c in at.caption)


# --------------------------------------------------------------------------- QA 3 #12 names as Markdown

ODD = "<img src=x onerror=alert(1)>**bold**`code`_x_ [link](y) $a$ ~~s~~.json"


def test_md_escape_shows_text_as_it_is():
    escaped = render.md_escape(ODD)
    assert escaped == (
        "\\<img src=x onerror=alert(1)\\>\\*\\*bold\\*\\*\\`code\\`\\_x\\_ \\[link\\](y) \\$a\\$ \\~\\~s\\~\\~.json"
    )
    assert render.md_escape("- item\nnext # 1") == "\\- item next \\# 1"  # one line, no list or heading
    assert render.md_escape("churn__v2__.json") == "churn\\_\\_v2\\_\\_.json"
    assert render.md_escape("plain name-1.csv") == "plain name-1.csv"


def test_user_names_on_a_stored_run_are_escaped(history_db):
    report = make_report("binary")
    report = dataclasses.replace(report, run_id="run-odd", data={**report.data, "target": "**y**"})
    HistoryStore(history_db).save(report, model_name=ODD)
    at = new_app()
    at.query_params["run"] = "run-odd"
    at.run()
    assert_clean(at)
    header = next(m.value for m in at.markdown if "run-odd" in m.value)
    assert f"**{render.md_escape(ODD)}**" in header and "target **\\*\\*y\\*\\***" in header
    assert "**bold**" not in header.replace(f"**{render.md_escape(ODD)}**", "")


def test_uploaded_file_names_are_escaped(model_files, csv_bytes, history_db):
    at = new_app().run()
    at = upload(at, ("**m**_1_.json", model_files["xgboost"][1]), ("`d`*a*.csv", csv_bytes))
    assert_clean(at)
    summary = next(m for m in texts(at.markdown) if m.startswith("**Model:**"))
    assert summary.endswith("**data:** \\`d\\`\\*a\\*.csv"), summary
    at.switch_page("views/history.py").run()
    at.switch_page("views/optimize.py").run()
    captions = "\n".join(texts(at.caption))
    assert "Using **\\*\\*m\\*\\*\\_1\\_.json**" in captions and "Using **\\`d\\`\\*a\\*.csv**" in captions


# --------------------------------------------------------------------------- QA 3 #4 downloads name the files


def _recorded_downloads(monkeypatch) -> dict[str, tuple[object, str]]:
    found: dict[str, tuple[object, str]] = {}
    original = streamlit.download_button

    def recording(label, data, **kwargs):
        found[label] = (data, kwargs["file_name"])
        return original(label, data, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recording)
    return found


def test_downloaded_reports_and_deploy_py_name_the_onnx_file_as_it_is_downloaded(history_db, monkeypatch):
    from optimizer_core.tune import deploy_script

    report = make_report("binary", with_tuning=True)
    snippet = 'import onnxruntime as ort\nsession = ort.InferenceSession("model.fp32.onnx", so)\n'
    report = dataclasses.replace(
        report,
        run_id="run-a",
        recommendation=dataclasses.replace(report.recommendation, snippet=snippet),
        artifacts={**report.artifacts, "deploy.py": deploy_script(snippet).encode()},
        tuning={**report.tuning, "snippets": {"fp32 t1": snippet}},
    )
    HistoryStore(history_db).save(report, model_name="m.json")
    downloads = _recorded_downloads(monkeypatch)
    at = new_app()
    at.query_params["run"] = "run-a"
    at.run()
    assert_clean(at)
    onnx_data, onnx_name = downloads["model.fp32.onnx"]
    assert onnx_name == "model.fp32.onnx"  # the name report.json, report.html and deploy.py use

    as_json = json.loads(downloads["report.json"][0]())
    assert '"model.fp32.onnx"' in as_json["recommendation"]["snippet"]
    assert '"model.fp32.onnx"' in as_json["tuning"]["snippets"]["fp32 t1"]
    html = downloads["report.html"][0]()
    shown = html.split("How to use it", 1)[1].split("</code>", 1)[0]
    assert "model.fp32.onnx" in shown
    deploy, deploy_name = downloads["deploy.py"]
    assert deploy_name == "deploy.py"
    assert 'HERE / "model.fp32.onnx"' in deploy().decode()
    # the stored run itself is unchanged: the CLI's --out and `history export` keep the plain names
    assert HistoryStore(history_db).load("run-a").recommendation.snippet == snippet


def test_size_card_says_none_when_every_variant_is_larger():
    """Regression: fp16 2.2x larger than fp32 showed as 'Size reduction 0.45x'."""
    from dashboard.render import _size_card

    h = {"size_reduction": 700 / 1560, "size_variant": "fp16", "size_baseline": "fp32", "size_bytes": 1560,
         "size_baseline_bytes": 700}
    label, value, caption, help_text = _size_card(h)
    assert value == "none" and "larger" in caption and "2.23× larger" in help_text


def test_url_like_names_are_not_turned_into_links():
    """Regression: a file named like a URL became a clickable link with stray backslashes."""
    shown = render.md_escape("https://evil.example/a_b.csv and www.example.com")
    assert "://" not in shown and "www." not in shown
    assert shown.replace("\u2060", "").replace("\\", "") == "https://evil.example/a_b.csv and www.example.com"


def test_two_different_models_with_the_same_name_and_shape_are_told_apart():
    a = make_report("binary")
    b = dataclasses.replace(a, model={**a.model, "source_sha256": "f" * 64})
    a = dataclasses.replace(a, model={**a.model, "source_sha256": "a" * 64})
    text = render.different_work(a, b, "m.json", "m.json")
    assert text and "file aaaaaaaaaaaa" in text and "file ffffffffffff" in text


def test_the_variant_and_latency_tables_list_native_t1_under_native():
    """The native model timed on one thread (report.json native_configurations) is a row of the dashboard's
    variant and latency tables, right under native, with no drift of its own."""
    from tests.core.report_factory import make_latency

    report = make_report("binary")
    native = report.native
    single = dataclasses.replace(native, name="native t1", drift=None, metrics=None, notes=("one thread",),
                                 latency=tuple(make_latency(s.batch_size, 123.4, calls=200) for s in native.latency))
    report = dataclasses.replace(report, native_configurations=(single,))
    variants = render.variant_table(report)
    assert list(variants["variant"][:2]) == ["native", "native t1"]
    assert variants["max drift"].iloc[0] == "reference" and variants["max drift"].iloc[1] == "—"
    latency = render.latency_table(report)
    names = list(dict.fromkeys(latency["variant"]))
    assert names[:2] == ["native", "native t1"]
    assert set(latency[latency["variant"] == "native t1"]["batch size"]) == {s.batch_size for s in native.latency}
    pyarrow.Table.from_pandas(variants)  # still Arrow-safe
    pyarrow.Table.from_pandas(latency)


def test_an_untuned_run_says_how_to_use_its_pick(history_db):
    """QA: "Why, and how to use it" had no "how" when the run was not tuned."""
    from optimizer_core.views.html import render_html

    report = make_report("binary")
    assert not report.tuning
    snippet = 'import onnxruntime as ort\nsession = ort.InferenceSession("fp32.onnx", so)\n'
    report = dataclasses.replace(report, run_id="run-u",
                                 recommendation=dataclasses.replace(report.recommendation, snippet=snippet))
    HistoryStore(history_db).save(report, model_name="m.json")
    at = new_app()
    at.query_params["run"] = "run-u"
    at.run()
    assert_clean(at)
    assert any("fp32.onnx" in c.value for c in at.code)
    assert any("How to use it" in c.value for c in at.caption)
    assert "How to use it" in render_html(report)
