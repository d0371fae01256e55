"""The workload model (模拟负载): petitions, petitioners and unit behaviour from a seed.  Pure Python.

Everything here is deterministic for a given seed: the same seed gives the same petitions,
the same petitioners, the same unit profiles and the same planned actions.  Shares follow
what a city petition bureau sees (online the majority, then letters, then visits).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from shared.identity import id_check_char

#: 信访形式 and their shares.
CHANNEL_SHARES = (("网上信访", 0.56), ("来信", 0.18), ("来访", 0.14), ("来电", 0.09), ("传真", 0.03))
#: 信访目的 and their shares.
PURPOSE_SHARES = (("求决", 0.58), ("申诉", 0.10), ("检举控告", 0.10), ("建议意见", 0.08), ("其他", 0.14))

#: Content categories (classic first level) with request templates; {place} is filled in.
#: Each template has paraphrases, used by repeat petitioners (同一事项换一种说法).
MATTERS: dict[str, list[list[str]]] = {
    "城乡建设": [["{place}小区外墙脱落，多次反映无人维修，存在安全隐患", "{place}小区楼体外墙砖掉落，物业和社区一直不处理，请求维修"],
               ["{place}安置房至今未交付，开发商拖延，要求按期交房", "{place}拆迁安置房迟迟不能入住，请求督促开发商交房"],
               ["{place}道路施工扬尘噪声扰民，夜间施工不停", "{place}修路工地晚上一直施工，噪音和灰尘严重影响休息"]],
    "劳动和社会保障": [["在{place}某建筑工地务工，工资被拖欠三个月，请求帮助讨薪", "{place}工地老板拖欠我们三个月工资，请政府帮忙追讨"],
                 ["{place}企业未为职工缴纳社会保险，要求补缴", "{place}公司一直不给我们交社保，请求责令补缴"]],
    "国土资源": [["{place}村集体土地被违规占用建厂，要求依法查处", "{place}有人占用村里耕地盖厂房，请求国土部门查处"],
             ["{place}宅基地确权有争议，请求重新丈量确权", "{place}我家宅基地面积登记有误，请求重新确权"]],
    "农村农业": [["{place}土地流转租金未按合同支付，请求协调", "{place}流转出去的承包地租金一年多没给，请求帮助协调"],
             ["{place}农田灌溉水渠损毁，影响春耕，请求修复", "{place}村里的灌溉渠垮了，马上要种地了，请求尽快修好"]],
    "环境保护": [["{place}化工厂夜间偷排废水，河水发黑发臭", "{place}工厂晚上往河里排污水，河水又黑又臭，请求查处"],
             ["{place}养殖场臭味严重，污染周边环境", "{place}附近养猪场气味太大，粪污乱排，请求治理"]],
    "民政": [["{place}低保评定不公平，符合条件的家庭未纳入", "{place}我家符合低保条件却没评上，评定过程不公开"]],
    "教育文体": [["{place}学校违规收取补课费，请求查处", "{place}中学老师组织有偿补课，每月收费，请求处理"]],
    "卫生计生": [["{place}卫生院医疗收费不透明，疑似多收费", "{place}乡卫生院看病多收钱，收费单据不清楚"]],
    "交通运输": [["{place}农村公路年久失修，坑洼严重，请求维修", "{place}村里的公路到处是坑，下雨无法通行，请求修路"]],
    "政法": [["对{place}法院判决不服，认为判决不公", "不服{place}法院的民事判决，请求重新审理"]],
    "纪检监察": [["反映{place}村干部虚报冒领补贴款问题", "举报{place}村支书套取国家补贴、优亲厚友"]],
}
CATEGORY_SHARES = (("城乡建设", 0.22), ("劳动和社会保障", 0.15), ("国土资源", 0.12), ("农村农业", 0.12),
                   ("环境保护", 0.10), ("民政", 0.07), ("教育文体", 0.05), ("卫生计生", 0.04), ("交通运输", 0.05),
                   ("纪检监察", 0.05), ("政法", 0.03))
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国玉兰志红春梅海燕"

#: Unit behaviour profiles (办理作风) and their shares.
PROFILE_SHARES = (("good", 0.72), ("slow", 0.16), ("sloppy", 0.12))


def pick(rng: random.Random, shares) -> str:
    roll, total = rng.random(), 0.0
    for value, share in shares:
        total += share
        if roll < total:
            return value
    return shares[-1][0]


def id_number(rng: random.Random, county: str) -> str:
    """A valid GB 11643 identity number with an address code in ``county``."""
    born = date(rng.randint(1950, 2000), rng.randint(1, 12), rng.randint(1, 28))
    body = f"{county}{born:%Y%m%d}{rng.randint(1, 999):03d}"
    return body + id_check_char(body)


def phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"


@dataclass
class Petitioner:
    name: str
    id_number: str
    phone: str
    county: str
    dissatisfied: bool  # grades the handling unit 不满意
    returns: bool  # comes back after closure (回流) when dissatisfied


@dataclass
class Planned:
    """One petition the simulator will register, with what it intends."""

    key: str
    day: int
    channel: str
    purpose: str
    category: str
    region_code: str
    county: str
    title: str
    request_text: str
    petitioner: Petitioner | None  # None: anonymous
    people_count: int = 1
    legal_litigation: bool = False
    registrar: str = "county"  # county | city (越级: registered above the competent level)
    repeat_of: str | None = None  # key of the earlier planned petition (same petitioner, same matter)
    reflow: bool = False
    matter: tuple[str, int] = ("", 0)


@dataclass
class Params:
    seed: int = 1
    days: int = 30
    per_day: float = 12.0
    group_visit_share: float = 0.16  # of visits (来访): 5 or more people (集体访)
    anonymous_letter_share: float = 0.25
    legal_share: float = 0.04
    repeat_share: float = 0.08
    cross_level_share: float = 0.3  # of repeats: go to the city while the county case is open
    dissatisfied_share: float = 0.12
    return_share: float = 0.6  # of dissatisfied petitioners: come back after closure


class Workload:
    """Draws petitions day by day; keeps the petitioners so repeats and reflows reuse them."""

    def __init__(self, params: Params, places: list[tuple[str, str, str]]) -> None:
        """``places``: (region_code 12 or 6 digits, county6, place name) where petitions arise."""
        self.params = params
        self.rng = random.Random(params.seed)
        self.places = places
        self.planned: list[Planned] = []
        self._seq = 0
        #: Fresh petitions with a petitioner (the ones a repeat may return to), in the order drawn, and how
        #: many of ``planned`` they have been collected from: ``day`` extends it instead of rescanning
        #: ``planned`` for every petition (the bulk fill draws a million).
        self._fresh: list[Planned] = []
        self._scanned = 0

    def _person(self, county: str) -> Petitioner:
        rng = self.rng
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        dissatisfied = rng.random() < self.params.dissatisfied_share
        return Petitioner(name=name, id_number=id_number(rng, county), phone=phone(rng), county=county,
                          dissatisfied=dissatisfied, returns=dissatisfied and rng.random() < self.params.return_share)

    def _key(self) -> str:
        self._seq += 1
        return f"S{self.params.seed}-{self._seq:06d}"

    def day(self, day: int) -> list[Planned]:
        """The fresh petitions of ``day`` (repeats of open cases are drawn here too)."""
        rng, p = self.rng, self.params
        count = max(0, round(rng.gauss(p.per_day, max(1.0, p.per_day ** 0.5))))
        out: list[Planned] = []
        self._fresh.extend(x for x in self.planned[self._scanned:] if x.petitioner and not x.repeat_of)
        self._scanned = len(self.planned)
        if self._fresh and self._fresh[-1].day >= day:  # a day drawn twice or out of order: the plain scan
            earlier_all = [x for x in self._fresh if x.day < day]
        else:
            earlier_all = self._fresh
        for _ in range(count):
            earlier = earlier_all
            if earlier and rng.random() < p.repeat_share:
                out.append(self.repeat(rng.choice(earlier), day, reflow=False))
                continue
            region, county, place = rng.choice(self.places)
            category = pick(rng, CATEGORY_SHARES)
            purpose = "检举控告" if category == "纪检监察" else pick(rng, PURPOSE_SHARES)
            if category != "纪检监察" and purpose == "检举控告":
                purpose = "求决"
            channel = pick(rng, CHANNEL_SHARES)
            anonymous = channel == "来信" and rng.random() < p.anonymous_letter_share
            matter = (category, rng.randrange(len(MATTERS[category])))
            text = MATTERS[category][matter[1]][0].format(place=place)
            group = channel == "来访" and rng.random() < p.group_visit_share
            item = Planned(key=self._key(), day=day, channel=channel, purpose=purpose, category=category,
                           region_code=region, county=county, title=text[:20], request_text=text,
                           petitioner=None if anonymous else self._person(county),
                           people_count=rng.randint(5, 30) if group else 1,
                           legal_litigation=category == "政法" or rng.random() < p.legal_share, matter=matter)
            out.append(item)
        self.planned.extend(out)
        return out

    def repeat(self, earlier: Planned, day: int, *, reflow: bool) -> Planned:
        """The same petitioner on the same matter, in other words (重复信访); at the city when 越级."""
        rng = self.rng
        category, index = earlier.matter
        place = next((name for code, _, name in self.places if code == earlier.region_code), "")
        text = MATTERS[category][index][1].format(place=place)
        cross = not reflow and rng.random() < self.params.cross_level_share
        item = Planned(key=self._key(), day=day, channel="来访" if cross else earlier.channel, purpose=earlier.purpose,
                       category=category, region_code=earlier.region_code, county=earlier.county, title=text[:20],
                       request_text=text, petitioner=earlier.petitioner, legal_litigation=earlier.legal_litigation,
                       registrar="city" if cross else "county", repeat_of=earlier.key, reflow=reflow,
                       matter=earlier.matter)
        if reflow:
            self.planned.append(item)
        return item


@dataclass
class UnitPlan:
    """How one unit handles a case, in days after the event that starts each step."""

    profile: str
    sign: int
    accept: int  # after signing
    opinion: int  # after acceptance
    closure_perfunctory: bool
    commitment_undone: bool
    extension: bool


def unit_profiles(seed: int, unit_ids: list[str]) -> dict[str, str]:
    rng = random.Random(f"profiles-{seed}")
    return {unit_id: pick(rng, PROFILE_SHARES) for unit_id in sorted(unit_ids)}


def plan_for(rng: random.Random, profile: str) -> UnitPlan:
    if profile == "slow":
        return UnitPlan(profile, sign=rng.randint(1, 4), accept=rng.randint(14, 20), opinion=rng.randint(20, 40),
                        closure_perfunctory=False, commitment_undone=False, extension=rng.random() < 0.3)
    if profile == "sloppy":
        return UnitPlan(profile, sign=rng.randint(0, 1), accept=rng.randint(0, 2), opinion=rng.randint(2, 6),
                        closure_perfunctory=rng.random() < 0.6, commitment_undone=rng.random() < 0.6, extension=False)
    return UnitPlan(profile, sign=rng.randint(0, 1), accept=rng.randint(0, 3), opinion=rng.randint(3, 12),
                    closure_perfunctory=False, commitment_undone=False, extension=False)


def draw_opinion(rng: random.Random, purpose: str, start: date, day: int) -> tuple[str, dict, date | None]:
    """The unit's answer by statutory type, drawn from ``rng``: 答复意见 (建议意见类), 核查结论 (检举控告类), else
    处理意见书; and the due date of its commitment (``due_date`` in the body, a date) when it supports the request."""
    common = {"facts": "经调查核实，信访人反映的情况基本清楚", "basis": "《信访工作条例》及相关政策规定"}
    if purpose == "建议意见":
        return "reply", {**common, "adoption": rng.choice(("采纳", "部分采纳", "未采纳"))}, None
    if purpose == "检举控告":
        return "issue_finding", {**common, "truth": rng.choice(("属实", "部分属实", "不属实", "不属实"))}, None
    outcome = rng.choice(("支持", "支持", "解释说明", "不予支持"))
    body = {**common, "outcome": outcome, "conclusion": "按处理意见办理",
            "truth": {"支持": "属实", "解释说明": "部分属实", "不予支持": "不属实"}[outcome]}
    due = None
    if outcome == "支持":
        due = start + timedelta(days=day + 7)
        body["commitments"] = [{"content": "限期整改到位并向信访人反馈", "due_date": due}]
    return "issue_opinion", body, due


def draw_evaluations(rng: random.Random, dissatisfied: bool) -> list[dict]:
    """The petitioner's 满意度评价 of the petition department and of the handling unit (one grade for both,
    drawn from ``rng`` unless dissatisfied), as the evaluate action's bodies."""
    grade = "不满意" if dissatisfied else rng.choice(("满意", "满意", "基本满意"))
    reason = {"reason": "问题没有实际解决"} if grade == "不满意" else {}
    return [{"target": target, "grade": grade, **reason} for target in ("petition_dept", "handling_unit")]

