"""Bulk import of a legacy ledger (台账): xlsx and csv, row-level error report, idempotent re-import,
the upload endpoint and the ``xinfang import-ledger`` command."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select

from intake_svc.imports import ledger
from intake_svc.imports.columns import COLUMNS, CellError, convert
from intake_svc.imports.models import LedgerImport
from intake_svc.models import Outbox, Petition, Petitioner
from shared.auth import Principal
from tests.helpers import auth
from tests.intake.ledger_builder import HEADERS, csv_ledger, ledger_row, xlsx_ledger

IMPORTS = "/intake/api/v1/imports"
CITY = Principal(user_id="u1", username="clerk-nanyang", role="registrar", jurisdiction="411300")


def upload(intake, content: bytes, name: str, *, role="registrar", jurisdiction="411300", **form):
    return intake.client.post(IMPORTS, data={"file": (io.BytesIO(content), name), **form},
                              headers=auth(intake.settings, role=role, jurisdiction=jurisdiction),
                              content_type="multipart/form-data")


def fetch(intake, path: str, *, role="registrar", jurisdiction="411300"):
    return intake.client.get(f"{IMPORTS}{path}", headers=auth(intake.settings, role=role, jurisdiction=jurisdiction))


def stored(intake) -> dict:
    """County numbers found in petitions and in the outbox, and the row counts."""
    with intake.runtime.read_sessions() as s:
        outbox = {json.loads(o.body)["payload"]["county_no"] for o in s.scalars(select(Outbox))}
        petitions = set(s.scalars(select(Petition.county_no)))
    return {"petitions": petitions, "outbox": outbox, "petitioners": intake.count(Petitioner),
            "imports": intake.count(LedgerImport)}


def mixed_rows():
    good = [ledger_row(台账编号=f"TZ-OK-{i}") for i in range(3)]
    good[1].update(信访日期=datetime(2026, 11, 17, 15, 45), 重大紧急="是", 涉及人数=6.0, 内容分类="03")
    bad = [ledger_row(台账编号="TZ-BAD-ID", 身份证号="110105194912310021"),  # check character wrong
           ledger_row(台账编号="TZ-BAD-2", 标题="", 内容分类="不存在的分类", 重大紧急="也许")]
    return good, bad


def test_xlsx_good_rows_registered_bad_rows_reported_and_nothing_stored_for_them(intake):
    # Given an xlsx ledger with three good rows and two bad ones (rows 4 and 6 of the sheet)
    good, bad = mixed_rows()
    content = xlsx_ledger([good[0], good[1], bad[0], good[2], bad[1]])
    # When a registrar of the city uploads it
    r = upload(intake, content, "宛城区台账.xlsx")
    # Then the good rows are registered and the bad ones fail
    assert r.status_code == 201, r.json
    s = r.json
    assert (s["rows"], s["created"], s["existing"], s["failed"], s["status"]) == (5, 3, 0, 2, "completed")
    assert s["imported_before_at"] is None and s["actor"] == "test-registrar"
    # And the report names row, column and reason
    report = {(e["row"], e["field"]) for e in s["errors"]}
    assert report == {(4, "身份证号"), (6, "标题"), (6, "内容分类"), (6, "重大紧急")}
    reasons = {(e["row"], e["field"]): e["reason"] for e in s["errors"]}
    assert "校验码" in reasons[(4, "身份证号")] and "必填" in reasons[(6, "标题")]
    assert "是" in reasons[(6, "重大紧急")] and "不存在" in reasons[(6, "内容分类")]
    # And nothing at all is stored for the bad rows: no petition, no petitioner, no outbox row
    got = stored(intake)
    assert got["petitions"] == got["outbox"] == {"TZ-OK-0", "TZ-OK-1", "TZ-OK-2"}
    assert got["petitioners"] == 3
    # And a registered petition carries the row's fields, personal data masked
    p = intake.get("/by-county-no", query_string={"system": "wancheng-xf", "county_no": "TZ-OK-1"}).json
    assert (p["title"], p["category_code"], p["region_code"], p["channel"]) == ("小区房产证多年未办理", "03",
                                                                                "411302", "来访")
    assert p["petitioned_at"] == "2026-11-17T07:45:00+00:00"  # a naive Excel time is Asia/Shanghai
    assert p["urgent"] is True and p["people_count"] == 6 and p["group_visit"] is True
    assert p["registrar"] == "test-registrar" and p["complained_party"] == "某某房地产开发有限公司"
    main = p["petitioners"][0]
    assert (main["name"], main["id_number"], main["phone"]) == ("张三", "1101**********002X", "138****5678")
    first = intake.get("/by-county-no", query_string={"system": "wancheng-xf", "county_no": "TZ-OK-0"}).json
    assert first["petitioned_at"] == "2026-11-17T16:00:00+00:00"  # date only: 00:00 in Shanghai
    assert first["registered_at"] == "2026-11-18T02:20:00+00:00"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_in_utf8_with_bom_or_gb18030(intake, encoding):
    # Given a csv ledger, as county offices export it, with a good and a bad row
    rows = [ledger_row(台账编号="CSV-1", 信访人姓名="李四"), ledger_row(台账编号="CSV-2", 问题属地="419999")]
    content = csv_ledger(rows, encoding=encoding)
    assert content.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    # When it is imported
    s = ledger.run_import(intake.runtime, content=content, file_name="台账.csv", principal=CITY)
    # Then the Chinese is read correctly: the good row registered, the bad one reported
    assert (s["created"], s["failed"]) == (1, 1)
    assert [(e["row"], e["field"]) for e in s["errors"]] == [(3, "问题属地")]
    assert "行政区划代码不存在" in s["errors"][0]["reason"]
    p = intake.get("/by-county-no", query_string={"system": "wancheng-xf", "county_no": "CSV-1"}).json
    assert p["petitioners"][0]["name"] == "李四" and p["title"] == "小区房产证多年未办理"
    assert stored(intake)["petitions"] == {"CSV-1"}


def test_reimporting_the_same_file_creates_nothing_new(intake):
    # Given a ledger imported once
    good, bad = mixed_rows()
    content = xlsx_ledger(good + bad)
    first = ledger.run_import(intake.runtime, content=content, file_name="台账.xlsx", principal=CITY)
    before, outbox = stored(intake), intake.count(Outbox)
    # When the same file is imported again
    again = ledger.run_import(intake.runtime, content=content, file_name="台账.xlsx", principal=CITY)
    # Then the good rows are existing, the bad ones fail again, and nothing new is stored
    assert (again["created"], again["existing"], again["failed"]) == (0, 3, 2)
    after = stored(intake)
    assert after["petitions"] == before["petitions"] and after["petitioners"] == before["petitioners"] == 3
    assert intake.count(Outbox) == outbox and after["imports"] == 2
    # And the summary says the file was imported before
    assert again["imported_before_id"] == first["id"] and again["sha256"] == first["sha256"]
    assert "3 existing" in again["message"] and "imported before at" in again["message"]


def test_missing_required_columns_reject_the_whole_file(intake):
    # Given a ledger without 标题 and 问题属地 columns
    headers = [h for h in HEADERS if h not in ("标题", "问题属地")]
    content = xlsx_ledger([ledger_row()], headers)
    # When it is uploaded
    r = upload(intake, content, "台账.xlsx")
    # Then it is rejected up front, naming the columns, and nothing is stored (not even an import record)
    assert r.status_code == 422
    assert "标题" in r.json["message"] and "问题属地" in r.json["message"]
    assert r.json["errors"]["files"]["file"] == [r.json["message"]]
    assert stored(intake) == {"petitions": set(), "outbox": set(), "petitioners": 0, "imports": 0}
    # And 登记系统 is required only without a default system
    no_system = csv_ledger([ledger_row(台账编号="NS-1")], [h for h in HEADERS if h != "登记系统"])
    with pytest.raises(ledger.LedgerFileError, match="登记系统"):
        ledger.run_import(intake.runtime, content=no_system, file_name="t.csv", principal=CITY)
    r = upload(intake, no_system, "t.csv", system="wolong-xf")
    assert r.status_code == 201 and r.json["created"] == 1 and r.json["system"] == "wolong-xf"
    assert stored(intake)["petitions"] == {"NS-1"}
    with intake.runtime.read_sessions() as session:
        assert session.scalar(select(Petition.system)) == "wolong-xf"


def test_upload_then_download_the_error_report(intake):
    # Given an uploaded ledger with a bad row, a title row above the headers and an unknown column
    rows = [ledger_row(台账编号="UP-1", 备注="x"), ledger_row(台账编号="UP-2", 信访日期="2026-13-45")]
    r = upload(intake, xlsx_ledger(rows, HEADERS + ["备注"], title="宛城区信访台账"), "宛城区台账.xlsx")
    assert r.status_code == 201, r.json
    s = r.json
    assert (s["created"], s["failed"]) == (1, 1) and s["warnings"] == ["unknown columns ignored: 备注 (未识别的列已忽略)"]
    # When the error report is downloaded as csv
    got = fetch(intake, f"/{s['id']}/errors.csv")
    # Then it is an attachment named after the ledger, UTF-8 with BOM, with 行号, 字段, 原因
    assert got.status_code == 200 and got.mimetype == "text/csv"
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "%E5%AE%9B%E5%9F%8E" in disposition  # 宛城…
    assert disposition.endswith(".errors.csv")
    assert got.data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(got.data.decode("utf-8-sig"))))
    assert lines[0] == ["行号", "字段", "原因"]
    assert [line[:2] for line in lines[1:]] == [["4", "信访日期"]] and "日期无效" in lines[1][2]
    # And as xlsx
    xlsx = fetch(intake, f"/{s['id']}/errors.xlsx")
    ws = load_workbook(io.BytesIO(xlsx.data)).active
    assert [list(r) for r in ws.iter_rows(values_only=True)][:2] == [["行号", "字段", "原因"], [4, "信访日期",
                                                                                       lines[1][2]]]
    # And the summary can be read again, not outside the importer's jurisdiction
    assert fetch(intake, f"/{s['id']}").json["error_count"] == 1
    assert fetch(intake, f"/{s['id']}", jurisdiction="411321").status_code == 403
    assert fetch(intake, "/nope").status_code == 404


def test_template_opens_with_the_expected_headers_and_its_example_imports(intake):
    r = fetch(intake, "/template.xlsx", role="supervisor")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(r.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS and HEADERS[:4] == ["台账编号", "登记系统", "信访形式", "信访目的"]
    assert {"身份证号", "联系电话", "涉及人数", "初信初访", "被反映人/单位"} <= set(HEADERS)
    assert upload(intake, r.data, "模板.xlsx").json["created"] == 1


def test_a_row_outside_the_jurisdiction_fails_alone(intake):
    # Given a county registrar (宛城区) and a ledger with a row for 卧龙区 next to their own
    rows = [ledger_row(台账编号="J-1"), ledger_row(台账编号="J-2", 问题属地="411303"), ledger_row(台账编号="J-3")]
    r = upload(intake, csv_ledger(rows), "台账.csv", jurisdiction="411302")
    # Then only that row fails, with a 403-like reason
    assert r.status_code == 201 and (r.json["created"], r.json["failed"]) == (2, 1)
    assert [(e["row"], e["field"]) for e in r.json["errors"]] == [(3, "问题属地")]
    assert "403" in r.json["errors"][0]["reason"] and "jurisdiction" in r.json["errors"][0]["reason"]
    assert stored(intake)["petitions"] == {"J-1", "J-3"}


def test_upload_roles_and_file_problems(intake, monkeypatch):
    content = csv_ledger([ledger_row()])
    assert upload(intake, content, "a.csv", role="supervisor").status_code == 403
    assert upload(intake, content, "a.csv", role="admin", jurisdiction="000000").status_code == 201
    # Not a ledger file, a legacy .xls, a corrupt xlsx
    assert upload(intake, b"%PDF-1.4 ...", "scan.pdf").status_code == 415
    assert upload(intake, b"\xd0\xcf\x11\xe0" + b"\0" * 100, "old.xls").status_code == 415
    corrupt = upload(intake, xlsx_ledger([ledger_row()])[:3000], "broken.xlsx")
    assert corrupt.status_code == 422 and "xlsx" in corrupt.json["message"]
    assert upload(intake, b"PK\x03\x04garbage", "x.xlsx").status_code == 422
    assert intake.client.post(IMPORTS, data={}, headers=auth(intake.settings, role="registrar"),
                              content_type="multipart/form-data").status_code == 422
    # Larger than the app's 2 MB is fine here; larger than the import limit is 413
    big = content + b"\n" * (3 * 1024 * 1024)
    assert upload(intake, big, "big.csv").status_code == 201
    monkeypatch.setattr("intake_svc.imports.api.MAX_UPLOAD_BYTES", 1024 * 1024)
    assert upload(intake, big, "big.csv").status_code == 413
    assert stored(intake)["imports"] == 2


def test_rows_repeating_a_number_in_the_same_file_are_reported(intake):
    rows = [ledger_row(台账编号="DUP"), ledger_row(台账编号="DUP", 标题="另一件事")]
    s = ledger.run_import(intake.runtime, content=csv_ledger(rows), file_name="d.csv", principal=CITY)
    assert (s["created"], s["failed"]) == (1, 1)
    assert s["errors"][0]["row"] == 3 and "第2行" in s["errors"][0]["reason"]
    blank_no = ledger.run_import(intake.runtime, content=csv_ledger([ledger_row(台账编号="")]), file_name="e.csv",
                                 principal=CITY)
    assert [(e["field"], blank_no["failed"]) for e in blank_no["errors"]] == [("台账编号", 1)]


def test_a_row_failing_while_stored_leaves_nothing_and_keeps_the_others(intake, monkeypatch):
    # Given the database fails on one row after its petition and outbox rows were written (not yet committed)
    from sqlalchemy.exc import OperationalError

    from intake_svc import service

    real = service.register_petition

    def flaky(session, runtime, *, data, **kw):
        registration = real(session, runtime, data=data, **kw)
        if data["county_no"] == "BOOM":
            session.flush()
            raise OperationalError("INSERT ...", {}, Exception("disk I/O error"))
        return registration

    monkeypatch.setattr(service, "register_petition", flaky)
    rows = [ledger_row(台账编号="OK-A"), ledger_row(台账编号="BOOM"), ledger_row(台账编号="OK-B")]
    # When the ledger is imported
    s = ledger.run_import(intake.runtime, content=csv_ledger(rows), file_name="f.csv", principal=CITY)
    # Then that row fails alone, with nothing of it stored, and the rows around it are committed
    assert (s["created"], s["failed"], s["status"]) == (2, 1, "completed")
    assert s["errors"] == [{"row": 3, "field": "（整行）", "reason": s["errors"][0]["reason"]}]
    assert "存储失败" in s["errors"][0]["reason"]
    got = stored(intake)
    assert got["petitions"] == got["outbox"] == {"OK-A", "OK-B"} and got["petitioners"] == 2


def test_command_imports_with_progress_summary_and_error_file(settings, monkeypatch, tmp_path):
    from shared.cli import cli

    monkeypatch.setenv("XINFANG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("XINFANG_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("XINFANG_LOG_LEVEL", "WARNING")
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate", "intake"], catch_exceptions=False).exit_code == 0
    # Given a ledger with a good row and a bad one, without a 登记系统 column
    source = tmp_path / "卧龙区台账.csv"
    source.write_bytes(csv_ledger([ledger_row(台账编号="CLI-1", 问题属地="411303"),
                                   ledger_row(台账编号="CLI-2", 涉及人数="很多")],
                                  [h for h in HEADERS if h != "登记系统"], encoding="gb18030"))
    # When it is imported with a default system
    result = runner.invoke(cli, ["import-ledger", str(source), "--system", "wolong-xf", "--jurisdiction", "411303",
                                 "--registrar", "王科员"], catch_exceptions=False)
    # Then it ran (exit 0), showed a progress bar and printed the summary
    assert result.exit_code == 0, result.output
    assert "2 rows: 1 created, 0 existing (already registered), 1 failed" in result.stdout
    assert "2/2" in result.stderr  # tqdm
    # And wrote the error report next to the ledger
    report = tmp_path / "卧龙区台账.errors.csv"
    assert f"error report: {report}" in result.stdout
    lines = list(csv.reader(io.StringIO(report.read_bytes().decode("utf-8-sig"))))
    assert lines[0] == ["行号", "字段", "原因"] and lines[1][:2] == ["3", "涉及人数"]
    # And again: nothing new, an explicit --errors path
    again = runner.invoke(cli, ["import-ledger", str(source), "--system", "wolong-xf", "--errors",
                                str(tmp_path / "r.csv")], catch_exceptions=False)
    assert "0 created, 1 existing" in again.stdout and "imported before at" in again.stdout
    assert (tmp_path / "r.csv").exists()
    # A file that cannot be imported: exit code 2, nothing written
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_ledger([ledger_row()], ["台账编号", "标题"]))
    refused = runner.invoke(cli, ["import-ledger", str(bad)], catch_exceptions=False)
    assert refused.exit_code == 2 and "missing required columns" in refused.stderr
    assert not (tmp_path / "bad.errors.csv").exists()


@pytest.mark.parametrize(("header", "value", "expected"), [
    ("信访日期", "2026-11-18", "2026-11-18T00:00:00+08:00"),
    ("信访日期", "2026/1/5 9:30", "2026-01-05T09:30:00+08:00"),
    ("信访日期", "2026年11月18日", "2026-11-18T00:00:00+08:00"),
    ("信访日期", date(2026, 11, 18), "2026-11-18T00:00:00+08:00"),
    ("信访日期", "2026-11-18T09:30:00+00:00", "2026-11-18T09:30:00+00:00"),
    ("问题属地", 411302, "411302"),
    ("联系电话", 13812345678.0, "13812345678"),
    ("涉及人数", "12", 12),
    ("匿名", "是", True),
    ("初信初访", "否", False),
    ("标题", "  带空格  ", "带空格"),
    ("事实理由", "   ", None),
])
def test_cells_are_read_as_their_column_kind(header, value, expected):
    column = next(c for c in COLUMNS if c.header == header)
    assert convert(column, value, "Asia/Shanghai") == expected


@pytest.mark.parametrize(("header", "value", "reason"), [
    ("身份证号", 110105194912310020.0, "文本格式"),  # Excel turned the identity number into a float
    ("信访日期", "昨天", "日期格式错误"),
    ("涉及人数", "1.5", "整数"),
    ("保密", "maybe", "是"),
])
def test_unreadable_cells_say_why(header, value, reason):
    column = next(c for c in COLUMNS if c.header == header)
    with pytest.raises(CellError, match=reason):
        convert(column, value, "Asia/Shanghai")
