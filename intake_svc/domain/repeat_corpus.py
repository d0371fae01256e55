"""A labelled, synthetic evaluation set for 重复信访 (repeat petition) detection.

For each simulated petitioner (信访人) an original petition is rendered from one of the
matter templates below (征地补偿, 拖欠工资, 房产证, 物业费, 拆迁安置, 工厂废气, 入学, 医疗纠纷,
养老金, 土地承包, 施工噪音, 违法建设, …) with that person's slot values (place, company,
amounts, years), then variants of it are paired with it as ``(new, earlier, same_matter)``:

* ``exact`` — the same letter sent again (same text, same codes): same matter;
* ``paraphrase`` — the same grievance re-worded: the other core phrasing, synonyms, reordered
  sentences, added/dropped details, other greetings, typos and full-width characters, a year
  later ("三年" → "四年"), region given at another precision, now and then a sibling
  second-level category chosen by another registrar: same matter;
* ``near_miss_same_category`` — the same person, place and first-level category, a different
  matter (房产证 vs 物业费 at the same estate, 工资 vs 社保 at the same employer): not the same;
* ``near_miss_other_category`` — the same person and place, a matter of another category;
* ``other_region`` — the same grievance placed in another county.  Policy (documented in
  :mod:`intake_svc.domain.similarity`): 重复信访 requires the same county-level 问题属地, so
  these are labelled NOT the same matter.

Category codes are second-level codes of ``intake_svc/codes/categories.yaml`` (``0306``
房地产开发与交易 under ``03`` 城乡建设 …).  Everything is drawn from one seeded
:class:`random.Random`, so a seed gives the same set on every machine.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from intake_svc.domain.similarity import Matter

KINDS: tuple[str, ...] = ("exact", "paraphrase", "near_miss_same_category", "near_miss_other_category", "other_region")
#: Share of each kind among the generated pairs (half are positives).
KIND_WEIGHTS: tuple[float, ...] = (0.15, 0.35, 0.25, 0.15, 0.10)
EVAL_SEED = 20261122
TUNING_SEED = 1107


@dataclass(frozen=True)
class Template:
    """A matter (信访事项) pattern: two core phrasings ("|"-separated) and optional details."""
    key: str
    category_code: str
    topic: str
    cores: str
    details: str


T = Template
TEMPLATES: tuple[Template, ...] = (
    T("land_contract", "0101", "土地承包", "村委会在承包期内强行收回我家{mu}亩承包地，转包给外地老板搞养殖|我家承包的{mu}亩耕地还没到期就被村里"
      "收走租给别人了，流转费一分没给", "土地承包经营权证上写明承包到2028年|找村干部理论被推来推去|全家就靠这几亩地生活"),
    T("farm_subsidy", "0104", "种粮补贴", "我家的耕地地力保护补贴连续{years}年没有发到一卡通上|{years}年来种粮补贴一直没领到，查询发现被村里报给了"
      "别人", "乡财政所说名单是村里报的|同组其他户都领到了"),
    T("village_accounts", "0102", "村务公开", "{village}村集体土地出租收入多年不公开，村民不知道钱去了哪里|村里把集体的鱼塘和林地租出去收了租金，账目"
      "从来不向村民公示", "村务公开栏好几年没有更新|村民代表要求查账被拒绝"),
    T("land_requisition", "0201", "征地补偿", "{year}年{town}征收我家{mu}亩耕地修建产业园，补偿款至今还差{amount}没有发放|我家{mu}亩地被征用建"
      "产业园已经{years}年了，征地补偿没给够，还欠{amount}", "补偿标准没有公示|地上青苗和附着物没有算进去|到乡政府询问都说再等等"),
    T("homestead", "0204", "宅基地审批", "我家申请宅基地建房{years}年了，乡里一直不批|儿子结婚需要盖房，宅基地申请交上去{years}年没有任何答复",
      "材料都按要求交齐了|村里同意的证明也开了"),
    T("farmland_occupation", "0203", "占用耕地", "{village}有人占用基本农田建厂房，国土部门不管|村边的基本农田被人圈起来盖了厂房，面积有{mu}亩左右",
      "已经拍了照片|举报后只来看了一下就走了"),
    T("property_certificate", "0306", "房产证办理", "开发商{developer}拖欠我们{estate}业主房产证{years}年了，一直不给办|我们在{estate}买房已经{years}年，"
      "房产证至今办不下来，{developer}推诿扯皮", "购房款早已全部付清|涉及{n}户业主|住建局说开发商手续不全"),
    T("property_fee", "0302", "物业费上涨", "{estate}物业公司突然把物业费从每平方米1元涨到1.8元，没有开业主大会|物业擅自上调物业费，我们{estate}业主"
      "不同意，物业就停水停电威胁", "物业公司是{developer}下属企业|小区卫生和安保都很差"),
    T("parking", "0306", "车位销售", "{estate}的地下停车位{developer}只卖不租，一个要价{amount}|小区车位被开发商高价出售，不买就不让停车，业主"
      "的车只能停在路边", "物价部门没有备案|业主多次协商无果"),
    T("resettlement", "0301", "安置房交付", "我家房屋在{town}棚户区改造中被拆除，安置房{years}年没有交付|棚改拆了我家的房子已经{years}年，回迁房"
      "一直没建好，过渡费也停发了", "签协议时承诺两年交房|现在一家人在外租房住"),
    T("forced_demolition", "0301", "强制拆除", "{month}月一天夜里，一伙人没有任何手续把我家房子强行拆除|还没签补偿协议，我家的房子就被人趁夜推倒了，"
      "屋里东西都没搬出来", "当晚报警也没人管|损失财物价值{amount}"),
    T("illegal_building", "0305", "违法建设", "邻居{neighbor}在楼顶违法加盖两层，挡住我家采光|楼上{neighbor}私自在屋顶搭房子，影响我家采光，还造成"
      "楼顶漏水", "城管来过一次下了通知但没有拆|我家老人因此常年晒不到太阳"),
    T("heating", "0307", "供暖不达标", "{estate}冬季供暖温度不达标，室内只有十几度|我们小区暖气一直不热，家里只有十二三度，老人孩子都冻病了",
      "供热公司说管网老化|暖气费一分不少交了"),
    T("tap_water", "0307", "自来水供水", "{village}自来水经常停水，放出来的水发黄|村里自来水三天两头停，水质浑浊有异味，没法饮用",
      "供水站说管道年久失修|群众只能去外面拉水"),
    T("unpaid_wages", "0401", "拖欠工资", "{employer}拖欠我们{n}名农民工工资共计{amount}，老板一直躲着不见|我们在{employer}的工地干了一年活，"
      "工钱{amount}到现在没结，包工头说公司没给钱", "有考勤记录和欠条|劳动监察大队去过一次"),
    T("social_insurance", "0403", "社保断缴", "{employer}从{year}年起停缴我的社会保险，已断缴{years}年|公司每月扣了我的社保钱却没有交上去，社保断了"
      "{years}年，影响以后退休", "工资条上每月都扣了社保|社保局查询记录显示欠费"),
    T("pension", "0408", "养老金发放", "我已满60周岁，办理退休后养老金一直没有发放|退休手续办了好几个月，养老金到现在一分钱没领到",
      "社保局说档案有问题|单位说已经把材料报上去了"),
    T("work_injury", "0405", "工伤认定", "我在{employer}上班时从脚手架上摔下导致腿部骨折，公司不给认定工伤|干活时受伤骨折，{employer}拒绝申报工伤，"
      "医药费也不报", "住院花了{amount}|现在腿脚落下残疾干不了重活"),
    T("dismissal", "0402", "违法辞退", "{employer}以经营困难为由把我辞退，不给经济补偿|我在{employer}干了{years}年，突然被通知不用来上班，"
      "补偿金一分没有", "没有提前一个月通知|劳动合同还有一年才到期"),
    T("medical_dispute", "0501", "医疗纠纷", "我父亲在{hospital}做手术后感染去世，医院存在过错却拒不承担责任|{hospital}手术失误导致我父亲死亡，院方"
      "推卸责任不肯赔偿", "病历被医院修改过|医调委调解没有结果"),
    T("medical_insurance", "0506", "医保报销", "我母亲在{hospital}住院花了{amount}，医保报销比例太低|母亲住院费用{amount}，新农合只报了一小部分，"
      "不符合政策", "医保中心说有些药品不在目录|同病房的病人报销比例比我们高"),
    T("school_admission", "0603", "学区入学", "孩子户口在{estate}，按学区应该上{school}，却被分到很远的学校|我们是{school}学区内住户，孩子报名被拒，"
      "教育局说名额满了", "房产证和户口都齐全|外学区的孩子却能入学"),
    T("school_fees", "0604", "学校乱收费", "{school}以买资料和补课的名义乱收费，每个学生收800元|{school}老师组织有偿补课，不参加的学生在班上"
      "被区别对待", "收费没有开任何票据|家长不敢公开反对"),
    T("subsistence", "0701", "低保取消", "我家是困难户，丈夫残疾，低保被村里无故取消|家里就靠低保过日子，今年突然被停了，村干部说名额不够",
      "孩子还在上学|村里有些条件好的人家反而吃上了低保"),
    T("disability_subsidy", "0708", "残疾人补贴", "我是二级肢体残疾，两项补贴{years}年没有发放|我有残疾证，生活补贴和护理补贴已经{years}年没领到",
      "残联说是乡里没上报|乡民政所让找残联"),
    T("fraud_case", "0801", "报案不立案", "我被人以投资理财名义骗走{amount}，报案后派出所一直不立案|去年在网上被骗了{amount}，去派出所报了案，"
      "到现在没有任何进展", "转账记录都提供了|骗子的电话还能打通"),
    T("court_enforcement", "0806", "判决执行", "法院判决{employer}还我借款{amount}，{years}年了一直执行不到位|官司赢了{years}年，{employer}欠我的"
      "{amount}法院就是执行不回来", "对方公司照常经营|执行法官说找不到财产"),
    T("illegal_fundraising", "0902", "非法集资", "{company}以高息为诱饵非法集资，我投进去的{amount}收不回来|我在{company}买了理财产品{amount}，到期后"
      "公司关门，老板失联", "受害人有{n}多户|公司还在电视上做过广告"),
    T("village_road", "1001", "通村公路", "{village}通村公路修好不到一年就坑坑洼洼，质量太差|村里新修的水泥路一年就烂了，路面开裂塌陷，怀疑偷工"
      "减料", "路面厚度明显不够|下雨天车辆根本过不去"),
    T("road_land", "1001", "修路占地", "修建{road}占用我家{mu}亩地，占地补偿一直没有给|{road}从我家地里穿过，占了{mu}亩承包地，到现在没见到"
      "补偿款", "施工前没有签任何协议|交通局说钱拨给乡里了"),
    T("prepaid_card", "1102", "预付卡退费", "{town}一家健身房办了年卡后老板跑路，{n}多名会员的钱退不回来|健身房收了我们会员费后突然关门，老板联系"
      "不上，我交了{amount}", "市场监管局说不归他们管|店门口贴了装修暂停营业"),
    T("factory_air", "1301", "工厂废气", "{factory}每天晚上偷偷排放刺鼻废气，附近居民经常头晕恶心|村旁边的{factory}排出的废气味道难闻，夜里更"
      "严重，群众身体受到影响", "烟囱冒黄烟|环保局来检查时工厂就停产"),
    T("factory_water", "1302", "工厂排污", "{factory}把生产污水直接排进河里，河水发黑发臭|{factory}偷排污水，村边小河的鱼都死光了，井水也不能喝",
      "排污口藏在芦苇丛里|下游的庄稼也受了影响"),
    T("construction_noise", "1303", "施工噪音", "{road}施工单位每天夜里施工到凌晨，噪音吵得居民无法睡觉|修{road}的工地晚上十点以后还在用机器作业，"
      "声音特别大，影响我们休息", "打了12345也没用|家里有高三学生要备考"),
    T("pig_farm", "1302", "养殖污染", "{village}有人办养猪场，粪水直排，臭气熏天|村里的养猪场离住户不到一百米，粪便乱排，夏天苍蝇成群",
      "养殖场没有环评手续|村民多次找村委会没人管"),
    T("service_attitude", "1401", "办事推诿", "{town}便民服务中心工作人员办事推诿，办一个证跑了{n}趟|到{town}便民服务中心办证，工作人员互相推脱，"
      "来回跑了{n}次还没办成", "每次都说缺材料但不一次说清|窗口人员上班时间玩手机"),
    T("cadre_corruption", "1607", "侵占扶贫资金", "{cadre}利用职务便利侵吞扶贫资金，数额{amount}|{cadre}把上面拨下来的扶贫款据为己有，贫困户没拿到",
      "虚报冒领了多户贫困户的名额|群众敢怒不敢言"),
)

COUNTIES = (("411302", "宛城区"), ("411303", "卧龙区"), ("411321", "南召县"), ("411323", "西峡县"),
            ("130102", "长安区"), ("130105", "新华区"), ("130131", "平山县"), ("511723", "开江县"), ("511702", "通川区"))
SLOTS = {
    "town": "仲景街道 新华街道 红泥湾镇 黄台岗镇 茶庵乡 汉冢乡 普安镇 讲治镇",
    "village": "张庄村 李营村 王湾村 刘寨村 赵河村 杨树岗村 陈沟村 周庄村",
    "estate": "锦华小区 阳光花园 翰林苑 滨河壹号 金色家园 盛世华庭",
    "developer": "鑫源置业有限公司 恒达房地产开发公司 天润置业 宏基地产",
    "employer": "宏达建筑劳务有限公司 新兴纺织厂 中原机械制造公司 金鼎物流公司",
    "company": "汇金投资咨询公司 鼎盛财富管理公司 聚富农业合作社",
    "factory": "华兴化工厂 永盛造纸厂 鑫旺铸造厂 天源建材厂",
    "school": "第三实验小学 第十五小学 育才中学 城南初级中学",
    "hospital": "市第二人民医院 县人民医院 县中医院 妇幼保健院",
    "road": "S231省道 滨河路 建设东路 G312国道",
    "neighbor": "王某 张某某 李某 赵某",
    "cadre": "村支书刘某 村主任陈某 村会计孙某",
}
CN_NUM = "零一二三四五六七八九十"
OPENINGS = ("尊敬的领导：", "领导您好，", "你好！", "", "", "我是{county}{town}{village}村民，", "尊敬的{county}信访局领导：")
CLOSINGS = ("恳请领导帮助解决。", "请求有关部门尽快处理。", "希望政府给我们一个说法。", "要求依法解决。", "", "谢谢！")
TITLES = ("关于{topic}的问题", "反映{topic}问题", "{topic}问题再次反映", "请求解决{topic}", "")
#: The generator's own re-wording table.  Three of its pairs (不动产权证, 工钱, 补偿金) are also in the
#: matcher's synonym table; bench/repeat_quality.py also scores the matcher without that table.
SYNONYMS = (("一直", "始终"), ("至今", "到现在"), ("没有", "没"), ("拖欠", "拖着不给"), ("开发商", "开发公司"),
            ("房产证", "不动产权证"), ("工资", "工钱"), ("补偿款", "补偿金"), ("拒绝", "不肯"), ("村委会", "村里"),
            ("老板", "负责人"), ("导致", "造成"), ("居民", "住户"), ("答复", "回复"), ("孩子", "小孩"),
            ("父亲", "老父亲"), ("施工", "作业"), ("多次", "反复"), ("严重", "厉害"), ("现在", "目前"))
TYPOS = (("的", "得"), ("在", "再"), ("已", "以"), ("账", "帐"), ("像", "象"), ("做", "作"))


@dataclass(frozen=True)
class LabelledPair:
    """One evaluation pair: is ``new`` the same matter (同一事项) as ``earlier``?"""
    new: Matter
    earlier: Matter
    same_matter: bool
    kind: str
    template: str


def _person(rng: random.Random) -> dict[str, str]:
    county_code, county = rng.choice(COUNTIES)
    slots = {name: rng.choice(pool.split()) for name, pool in SLOTS.items()}
    slots |= {"county_code": county_code, "county": county, "township": f"{rng.randint(1, 12):03d}",
              "village_no": f"{rng.randint(1, 30):03d}"}
    return slots


def _numbers(rng: random.Random) -> dict[str, int]:
    return {"years": rng.randint(2, 6), "year": rng.randint(2015, 2023), "mu": rng.randint(2, 15),
            "n": rng.randint(12, 300), "month": rng.randint(1, 12), "amount": rng.randint(8, 480) * 500}


def _format_numbers(rng: random.Random, nums: dict[str, int]) -> dict[str, str]:
    amount = nums["amount"]
    out = {k: str(v) for k, v in nums.items()}
    out["amount"] = rng.choice((f"{amount}元", f"{amount / 10000:g}万元"))
    for key in ("years", "mu", "month"):  # 三年 / 3年
        if nums[key] <= 10 and rng.random() < 0.5:
            out[key] = CN_NUM[nums[key]]
    return out


def _region(rng: random.Random, person: dict[str, str], precision: float = 0.6) -> str:
    if rng.random() < precision:
        return person["county_code"] + person["township"] + person["village_no"]
    return person["county_code"]


def _noisy(rng: random.Random, text: str) -> str:
    """Typos, full-width characters and stray spaces (错别字, 全角字符)."""
    if rng.random() < 0.4:
        a, b = rng.choice(TYPOS)
        text = text.replace(a, b, 1)
    if rng.random() < 0.4:
        text = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    if rng.random() < 0.3:
        pos = rng.randrange(len(text))
        text = text[:pos] + " " + text[pos:]
    return text


def render(rng: random.Random, tpl: Template, person: dict[str, str], nums: dict[str, int], *,
           reword: bool = False, core: int | None = None) -> str:
    """Title + request + facts of one petition about ``tpl``; ``reword`` makes a paraphrase."""
    slots = person | _format_numbers(rng, nums)
    cores, details = tpl.cores.split("|"), tpl.details.split("|")
    sentences = [cores[rng.randrange(2) if core is None else core]]
    sentences += rng.sample(details, rng.randint(0, len(details)))
    if reword and rng.random() < 0.5:
        rng.shuffle(sentences)
    body = "。".join(s.format(**slots) for s in sentences) + "。"
    if reword:
        for a, b in SYNONYMS:
            if rng.random() < 0.5:
                body = body.replace(a, b) if a in body else body.replace(b, a)
    title = rng.choice(TITLES).format(topic=tpl.topic)
    text = (title + "\n" if title else "") + rng.choice(OPENINGS).format(**slots) + body + rng.choice(CLOSINGS)
    return _noisy(rng, text) if reword else text


def _sibling_code(rng: random.Random, code: str) -> str:
    siblings = sorted({t.category_code for t in TEMPLATES if t.category_code[:2] == code[:2]} - {code})
    return rng.choice(siblings) if siblings else code


def _variant(rng: random.Random, kind: str, tpl: Template, person: dict[str, str], nums: dict[str, int],
             earlier: Matter, core: int) -> tuple[Matter, Template]:
    if kind == "exact":
        return earlier, tpl
    if kind in ("paraphrase", "other_region"):
        later = nums | {"years": nums["years"] + rng.choice((0, 0, 1))}
        text = render(rng, tpl, person, later, reword=True, core=1 - core if rng.random() < 0.7 else core)
        code = _sibling_code(rng, tpl.category_code) if rng.random() < 0.15 else tpl.category_code
        if kind == "paraphrase":
            region = _region(rng, person, precision=0.6)
            if rng.random() < 0.1:  # another village or township of the same county
                region = person["county_code"] + f"{rng.randint(13, 20):03d}" + person["village_no"]
            return Matter(region, code, code[:2], text), tpl
        moved_to = rng.choice([c for c, _ in COUNTIES if c != person["county_code"]])
        return Matter(moved_to, code, code[:2], text), tpl
    same_classic = kind == "near_miss_same_category"
    pool = [t for t in TEMPLATES if t is not tpl and (t.category_code[:2] == tpl.category_code[:2]) == same_classic]
    other = rng.choice(pool)
    text = render(rng, other, person, _numbers(rng), reword=rng.random() < 0.5)
    return Matter(_region(rng, person), other.category_code, other.category_code[:2], text), other


def generate_pairs(n_pairs: int = 2000, seed: int = EVAL_SEED) -> list[LabelledPair]:
    """``n_pairs`` labelled pairs from about ``n_pairs / 2`` petitioners, reproducible from ``seed``."""
    rng = random.Random(seed)
    pairs: list[LabelledPair] = []
    while len(pairs) < n_pairs:
        person, nums = _person(rng), _numbers(rng)
        tpl, core = rng.choice(TEMPLATES), rng.randrange(2)
        text = render(rng, tpl, person, nums, core=core)
        earlier = Matter(_region(rng, person), tpl.category_code, tpl.category_code[:2], text)
        for _ in range(rng.randint(1, 3)):
            kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
            if kind == "near_miss_same_category" and not any(
                    t is not tpl and t.category_code[:2] == tpl.category_code[:2] for t in TEMPLATES):
                kind = "near_miss_other_category"
            new, used = _variant(rng, kind, tpl, person, nums, earlier, core)
            pairs.append(LabelledPair(new, earlier, kind in ("exact", "paraphrase"), kind, used.key))
    return pairs[:n_pairs]
