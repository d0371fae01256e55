"""Unit tests for intake_svc.domain.similarity (重复信访: is a new petition the same matter?).

The hand-written pairs below were written for these tests, independently of the templates of
intake_svc.domain.repeat_corpus; the quality floor runs on a generated set whose seed is
neither the tuning seed nor the evaluation seed of bench/repeat_quality.py.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from intake_svc.domain.repeat_corpus import EVAL_SEED, TUNING_SEED, generate_pairs
from intake_svc.domain.similarity import (
    DEFAULT_THRESHOLD,
    Matter,
    MatterMatcher,
    category_similarity,
    location_similarity,
)

VILLAGE = "411302001002"  # 宛城区, one village
QUALITY_SEED = 314


def matter(text: str, code: str, region: str = VILLAGE) -> Matter:
    return Matter(region_code=region, category_code=code, classic_code=code[:2], text=text)


@pytest.fixture(scope="module")
def matcher() -> MatterMatcher:
    return MatterMatcher()


PARAPHRASES = [
    pytest.param(matter("开发商拖欠我们小区房产证三年了，一直不给办", "0306"),
                 matter("我们小区买房已经三年，房产证至今办不下来，开发商推诿", "0306"), id="property-certificate"),
    pytest.param(matter("我在恒通建筑公司工地干活，老板拖欠我和工友们的工资共8.6万元，至今不给", "0401"),
                 matter("恒通建筑公司的工程结束一年多了，我们工友的工钱86000元还没有结清，老板一直拖着", "0401"),
                 id="unpaid-wages-amount-and-synonym"),
    pytest.param(matter("2021年村里修高速占了我家3亩地，征地补偿款到现在还没发下来", "0201"),
                 matter("修高速公路征收我家三亩耕地，补偿款一直没有到位，已经两年多了", "0201"), id="land-requisition"),
    pytest.param(matter("村东头的砖厂天天冒黑烟，呛得人喘不过气，晚上更厉害", "1301"),
                 matter("砖厂排放黑烟污染空气，附近村民夜里被烟呛醒，要求关停砖厂", "1301"), id="kiln-smoke"),
    pytest.param(matter("尊敬的领导：物业公司乱收停车费，每月收３００元，请求查处！", "0302"),
                 matter("你好，物业公司乱收停车费,每月收300元。", "0302"), id="full-width-and-boilerplate"),
    pytest.param(matter("关于孩子上学问题：我家在学区内，孩子报名实验小学被拒", "0603", region="411302"),
                 matter("孩子户口和房子都在实验小学学区，学校却不让孩子入学，说名额满了", "0603"),
                 id="school-admission-county-vs-village-code"),
]

NEAR_MISSES = [
    pytest.param(matter("开发商拖欠我们小区房产证三年了，一直不给办", "0306"),
                 matter("小区物业费从每月1.2元涨到2元，没有经过业主大会同意，我们不服", "0302"),
                 id="certificate-vs-property-fee"),
    pytest.param(matter("开发商只卖车位不租，一个车位要价二十万，不买就不让停车", "0306"),
                 matter("开发商拖欠我们小区房产证三年了，一直不给办", "0306"), id="parking-vs-certificate-same-code"),
    pytest.param(matter("恒通建筑公司拖欠我2023年的工资共8.6万元，老板一直躲着不见", "0401"),
                 matter("恒通建筑公司从2022年起没有给我缴纳养老保险，社保已经断缴两年", "0403"),
                 id="wages-vs-pension-insurance-same-employer"),
    pytest.param(matter("我父亲在县医院做手术后感染去世，医院不承担责任", "0501"),
                 matter("母亲在县医院住院花了5万元，新农合只报销了一小部分", "0506"), id="same-hospital"),
    pytest.param(matter("村东头的砖厂天天冒黑烟，呛得人喘不过气", "1301"),
                 matter("砖厂的大货车天天从村里过，把村道压坏了", "1001"), id="same-kiln-other-category"),
    pytest.param(matter("村里修路把我家门口的排水沟堵了，下雨就淹", "1001"),
                 matter("我家低保今年被取消了，村干部说名额不够", "0701"), id="unrelated"),
]


def test_exact_repeat_is_the_same_matter(matcher: MatterMatcher) -> None:
    # Given the same letter sent twice
    earlier = matter("尊敬的领导：开发商拖欠我们锦华小区房产证三年了，一直不给办，请求督促解决。", "0306")
    # When it is compared with itself
    result = matcher.compare(earlier, earlier)
    # Then it is a repeat with full scores
    assert result.same_matter
    assert result.components == {"text": 1.0, "location": 1.0, "category": 1.0}
    assert result.score == pytest.approx(1.0)


@pytest.mark.parametrize(("new", "earlier"), PARAPHRASES)
def test_paraphrases_of_the_same_grievance_match(matcher: MatterMatcher, new: Matter, earlier: Matter) -> None:
    # Given the same grievance in other words; When compared; Then it is the same matter
    result = matcher.compare(new, earlier)
    assert result.same_matter, result.reasons


@pytest.mark.parametrize(("new", "earlier"), NEAR_MISSES)
def test_other_matters_of_the_same_person_and_place_do_not_match(matcher: MatterMatcher, new: Matter,
                                                                 earlier: Matter) -> None:
    # Given a different matter of the same petitioner at the same place; When compared
    result = matcher.compare(new, earlier)
    # Then it is not a repeat
    assert not result.same_matter, result.reasons


def test_boilerplate_alone_is_no_evidence_of_a_repeat(matcher: MatterMatcher) -> None:
    # Given two petitions whose text is nothing but greetings and requests
    new, earlier = matter("尊敬的领导：您好！请求帮助解决问题。", "0306"), matter("你好，恳请领导处理！", "0306")
    # When compared, Then same place and category do not make them one matter
    result = matcher.compare(new, earlier)
    assert result.components["text"] == 0.0
    assert not result.same_matter


def test_the_same_grievance_in_another_county_is_not_a_repeat(matcher: MatterMatcher) -> None:
    # Given the identical text and category, placed in 宛城区 and in 卧龙区
    text = "开发商拖欠我们小区房产证三年了，一直不给办"
    # When compared
    result = matcher.compare(matter(text, "0306", "411302001002"), matter(text, "0306", "411303001002"))
    # Then the county rule vetoes it, and says so
    assert not result.same_matter
    assert result.components["text"] == 1.0
    assert any("不在同一县级属地" in r for r in result.reasons)


def test_reasons_name_location_category_text_and_verdict(matcher: MatterMatcher) -> None:
    # Given a paraphrased repeat
    new, earlier = PARAPHRASES[0].values
    # When compared
    result = matcher.compare(new, earlier)
    # Then the reasons explain each component in Chinese, with codes and numbers
    location, category, text, shared, verdict = result.reasons
    assert location == f"问题属地相同({VILLAGE})"
    assert category == "内容分类相同(城乡建设/0306)"
    assert text == f"诉求文本相似度{result.components['text']:.2f}"
    assert shared.startswith("共同要点: ") and "房产证" in shared
    assert verdict.endswith("判定为重复信访") and f"阈值{DEFAULT_THRESHOLD:.2f}" in verdict
    assert set(result.components) == {"text", "location", "category"}
    assert 0.0 <= result.score <= 1.0


def test_best_match_picks_the_same_matter_among_several(matcher: MatterMatcher) -> None:
    # Given a petitioner's earlier petitions: two other matters, the same grievance in another
    # county, a weak paraphrase and a near-exact repeat
    new = matter("开发商拖欠我们小区房产证三年了，一直不给办，多次找住建局没有结果", "0306")
    candidates = [
        ("P-fee", matter("小区物业费从每月1.2元涨到2元，没有经过业主大会同意", "0302")),
        ("P-parking", matter("开发商只卖车位不租，一个车位要价二十万", "0306")),
        ("P-elsewhere", matter("开发商拖欠我们小区房产证三年了，一直不给办", "0306", "411303001002")),
        ("P-paraphrase", matter("我们小区买房已经三年，房产证至今办不下来，开发商推诿", "0306")),
        ("P-repeat", matter("开发商拖欠我们小区房产证三年了，一直不给办", "0306")),
    ]
    # When the best match is asked for
    found = matcher.best_match(new, candidates)
    # Then it is the closest repeat in the same county, with its result
    assert found is not None
    key, result = found
    assert key == "P-repeat"
    assert result.same_matter
    assert result.score == max(matcher.compare(new, m).score for _, m in candidates)


def test_best_match_is_none_without_a_repeat(matcher: MatterMatcher) -> None:
    new, earlier = NEAR_MISSES[0].values
    assert matcher.best_match(new, [("P-1", earlier)]) is None
    assert matcher.best_match(new, []) is None


def test_threshold_and_text_floor_are_respected() -> None:
    # Given a paraphrase that matches at the defaults
    new, earlier = PARAPHRASES[0].values
    score = MatterMatcher().compare(new, earlier).score
    # When the threshold is set just above / at its score
    above = MatterMatcher(threshold=min(1.0, score + 0.01)).compare(new, earlier)
    at = MatterMatcher(threshold=score).compare(new, earlier)
    # Then the verdict flips at the threshold
    assert not above.same_matter and any("<阈值" in r for r in above.reasons)
    assert at.same_matter
    # And with no threshold and no text floor, a near miss in the same county passes
    near_new, near_earlier = NEAR_MISSES[0].values
    assert MatterMatcher(threshold=0.0, min_text=0.0).compare(near_new, near_earlier).same_matter
    assert not MatterMatcher(threshold=0.0).compare(near_new, near_earlier).same_matter  # the text floor
    with pytest.raises(ValueError):
        MatterMatcher(threshold=1.5)
    with pytest.raises(ValueError):
        MatterMatcher(weights={"text": 1.0})


@pytest.mark.parametrize(("a", "b", "score"), [
    ("411302001002", "411302001002", 1.0),   # same village
    ("411302001002", "411302001005", 0.85),  # same township
    ("411302001002", "411302004002", 0.6),   # same county
    ("411302", "411302001002", 0.6),         # county code against a village code
    ("411302", "411303", 0.2),               # same city, other county
    ("411302", "130102", 0.0),               # elsewhere
    ("", "411302", 0.0),                     # missing
])
def test_location_levels(a: str, b: str, score: float) -> None:
    assert location_similarity(a, b)[0] == score


def test_category_levels() -> None:
    assert category_similarity(matter("", "0306"), matter("", "0306")) == (1.0, "内容分类相同(城乡建设/0306)")
    assert category_similarity(matter("", "0306"), matter("", "0302"))[0] == 0.5
    assert category_similarity(matter("", "03"), matter("", "0302"))[0] == 0.8
    assert category_similarity(matter("", "0306"), matter("", "0401")) == (0.0, "内容分类不同(城乡建设≠劳动和社会保障)")


def test_quality_floor_on_a_generated_set() -> None:
    # Given 300 labelled pairs from a seed used neither for tuning nor for the bench
    assert QUALITY_SEED not in (TUNING_SEED, EVAL_SEED)
    pairs = generate_pairs(300, QUALITY_SEED)
    # When the default matcher judges them
    matcher = MatterMatcher()
    verdicts = [matcher.compare(p.new, p.earlier).same_matter for p in pairs]
    # Then precision and recall clear their floors
    tp = sum(v and p.same_matter for v, p in zip(verdicts, pairs, strict=True))
    precision = tp / sum(verdicts)
    recall = tp / sum(p.same_matter for p in pairs)
    assert precision >= 0.97, precision
    assert recall >= 0.90, recall


def test_generated_set_is_deterministic_and_labelled_by_kind() -> None:
    first, again = generate_pairs(120, 7), generate_pairs(120, 7)
    assert first == again
    assert first != generate_pairs(120, 8)
    for pair in first:
        assert pair.same_matter == (pair.kind in ("exact", "paraphrase"))
        if pair.kind == "other_region":
            assert pair.new.region_code[:6] != pair.earlier.region_code[:6]


def test_cached_compare_is_well_under_a_millisecond(matcher: MatterMatcher) -> None:
    # Given the texts analysed once (the cache a registration builds)
    pairs = [p.values for p in PARAPHRASES + NEAR_MISSES]
    for new, earlier in pairs:
        matcher.compare(new, earlier)
    # When compared again, Then each compare takes far less than 1 ms (≈ 15 µs measured)
    start = time.perf_counter()
    for _ in range(50):
        for new, earlier in pairs:
            matcher.compare(new, earlier)
    assert (time.perf_counter() - start) / (50 * len(pairs)) < 1e-3


def test_import_does_no_work_and_first_use_prints_nothing() -> None:
    # Given a fresh interpreter; When the module is imported and then used once
    code = (
        "import sys\n"
        "from intake_svc.domain.similarity import Matter, MatterMatcher\n"
        "assert 'jieba' not in sys.modules, 'jieba loaded at import time'\n"
        "m = Matter('411302', '0306', '03', '开发商拖欠房产证三年')\n"
        "assert MatterMatcher().compare(m, m).same_matter\n"
        "assert 'jieba' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    # Then it succeeds without a word on stdout or stderr (no "Building prefix dict…")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_same_complaint_against_another_named_respondent_is_another_matter():
    # Given unpaid wages at one employer, then the same words about another employer
    m = MatterMatcher()
    text = "公司拖欠我们工资八个月，共计三万六千元，多次讨要无果"
    earlier = Matter("411302", "0402", "04", "宏达建筑劳务有限公司" + text, respondent="宏达建筑劳务有限公司")
    new = Matter("411302", "0402", "04", "金鼎物流有限公司" + text, respondent="金鼎物流有限公司")
    same_employer = Matter("411302", "0402", "04", text, respondent="宏达建筑劳务公司")
    # Then a different respondent vetoes the match, the same one (written slightly differently) does not
    result = m.compare(new, earlier)
    assert not result.same_matter and any("被反映人" in r for r in result.reasons)
    assert m.compare(same_employer, earlier).same_matter
    # And an unnamed respondent does not veto
    assert m.compare(Matter("411302", "0402", "04", "宏达建筑劳务有限公司" + text), earlier).same_matter
