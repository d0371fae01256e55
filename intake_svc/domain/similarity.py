"""重复信访 (repeat petition) detection: is a new petition the same matter (同一信访事项) as an earlier one?

Registration compares the new petition with every earlier petition of the same petitioner
(the caller finds those by the identity-number hash) on three things:

* 问题属地 (problem location, GB/T 2260 6-digit or 12-digit statistical code): same village >
  same township (乡镇) > same county (县级) > same city > different.  **Policy:** 重复信访 needs
  the same county-level location; a matter moved to another county is a new matter there.
* 内容分类 (content category): same second level (``0302``) > same classic first level
  (``classic_code``, ``03`` 城乡建设) > different.  A different category only lowers the score
  (registrars code the same grievance differently); it is not a veto.
* 诉求文本 (title + request + facts), compared for paraphrase: NFKC (全角 → 半角), salutations,
  self-introductions and petition boilerplate (尊敬的…领导, 我是…村民, 反映, 要求, 恳请 …) removed,
  a small synonym table folded (不动产权证 → 房产证), organisation names (宏达建筑劳务有限公司)
  counted once as one word, then the mean of the cosine of character bigram+trigram counts
  (robust to typos and segmentation) and the IDF-weighted Dice overlap of jieba words plus key
  numbers (amounts, 亩, years): rare content words (房产证, 社保) weigh far more than 公司 or 我们.
  jieba (its dictionary and IDF table ship in the wheel) loads lazily and quietly on first use.

重复信访 = same county, text similarity ≥ ``min_text`` (the texts must share substance — the
same village and category alone never make a repeat) and weighted score ≥ ``threshold``.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from intake_svc.codes import CATEGORIES

#: Decision threshold on the score and floor on the text similarity, chosen on
#: repeat_corpus.TUNING_SEED, never on the evaluation seed (bench/repeat_quality.py --tune).
DEFAULT_THRESHOLD = 0.37
DEFAULT_MIN_TEXT = 0.15
#: Default weights of the components (text, location, category); they are normalised.
DEFAULT_WEIGHTS: dict[str, float] = {"text": 0.7, "location": 0.15, "category": 0.15}
#: Petition boilerplate (信访套话) that says nothing about the matter itself.
BOILERPLATE: tuple[str, ...] = (
    "尊敬的", "领导", "你好", "您好", "谢谢", "此致", "敬礼", "反映", "要求", "请求", "恳请", "希望", "强烈",
    "有关部门", "相关部门", "政府", "信访局", "帮助", "帮忙", "解决", "处理", "落实", "问题", "情况", "事情",
    "再次", "依法", "尽快", "给予", "我们", "本人", "我是", "一个说法", "说法", "关于",
)
#: 事项同义词表: variants folded to one word before comparing (in production a versioned local code
#: table).  Only common petition vocabulary; ``MatterMatcher(synonyms={})`` switches it off.
DEFAULT_SYNONYMS: Mapping[str, str] = {
    "不动产权证": "房产证", "不动产证": "房产证", "产权证": "房产证", "房本": "房产证", "工钱": "工资", "薪水": "工资",
    "薪资": "工资", "劳务费": "工资", "社会保险": "社保", "补偿金": "补偿款", "补偿费": "补偿款", "暖气": "供暖",
    "供热": "供暖", "取暖": "供暖", "噪声": "噪音", "回迁房": "安置房", "停车位": "车位", "新农合": "医保",
    "解雇": "辞退", "开除": "辞退", "废水": "污水",
}
#: Salutations and self-introductions (尊敬的××信访局领导, 我是××村村民): the petitioner's own
#: address, not the matter; the problem location is compared through the region code.
_PREAMBLE = r"尊敬的[^,.:;!?]{0,20}?领导|我是[^,.:;!?]{0,25}?(?:村民|居民|业主|职工|群众|农民工)"
_BOILER_RE = re.compile("|".join([_PREAMBLE, *sorted(BOILERPLATE, key=len, reverse=True)]))
_SPLIT_RE = re.compile(r"[^\u3400-\u9fffa-z]+")  # punctuation, spaces and digits end a segment


@dataclass(frozen=True)
class Matter:
    """What is compared: 问题属地, 内容分类 and the text (title + request + facts, joined by the caller)."""
    region_code: str
    category_code: str
    classic_code: str
    text: str
    respondent: str = ""  # 被反映人/单位: when both name one and they differ, it is another matter


#: Below this bigram overlap two named respondents are different people or units.
RESPONDENT_MIN_OVERLAP = 0.5


def respondent_overlap(a: str, b: str) -> float | None:
    """Jaccard overlap of the character bigrams of two respondents; None when either is unnamed."""
    a, b = (unicodedata.normalize("NFKC", x).strip().lower() for x in (a, b))
    if not a or not b:
        return None
    grams_a = {a[i:i + 2] for i in range(max(1, len(a) - 1))}
    grams_b = {b[i:i + 2] for i in range(max(1, len(b) - 1))}
    return len(grams_a & grams_b) / len(grams_a | grams_b)


@dataclass(frozen=True)
class MatchResult:
    """Score in 0..1, the decision (重复信访 or not), reasons in Chinese, and the component scores."""
    score: float
    same_matter: bool
    reasons: list[str]
    components: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- text features

_jieba_lock = threading.Lock()
_jieba: tuple[Any, dict[str, float], float] | None = None


def _tokenizer() -> tuple[Any, dict[str, float], float]:
    """jieba's tokenizer, IDF table and median IDF (shipped in the wheel): loaded once, lazily, quietly."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict…" on the console
            with warnings.catch_warnings():  # jieba leaves its idf.txt open (ResourceWarning)
                warnings.simplefilter("ignore", ResourceWarning)
                import jieba.analyse
            jieba.initialize()
            _jieba = (jieba.dt, jieba.analyse.default_tfidf.idf_freq, jieba.analyse.default_tfidf.median_idf)
    return _jieba


_AMOUNT_RE = re.compile(r"(\d+(?:\.\d+)?)(万)?元")
_QUANTITY_RE = re.compile(r"(\d+|十?[一二三四五六七八九十])亩|((?:19|20)\d\d)年|(\d{2,})多?(?:户|名|人)")
_CN_DIGITS = "零一二三四五六七八九十"


def _key_numbers(text: str) -> set[str]:
    """Amounts (数额 ≥ 100元), areas (亩), calendar years and head-counts: a repeat restates them."""
    out = {f"{float(m[1]) * (10000 if m[2] else 1):.0f}元" for m in _AMOUNT_RE.finditer(text)
           if float(m[1]) * (10000 if m[2] else 1) >= 100}
    for mu, year, heads in _QUANTITY_RE.findall(text):
        out.add(f"{mu if mu.isdigit() else _CN_DIGITS.index(mu[-1]) + 10 * (len(mu) > 1)}亩" if mu else
                f"{year}年" if year else f"{heads}人")
    return out


def normalise(text: str, synonyms: Mapping[str, str] | None = None) -> list[str]:
    """Segments after NFKC (全角→半角), lower-casing, synonym folding and removal of boilerplate,
    punctuation and digits."""
    return _segments(unicodedata.normalize("NFKC", text).lower(), synonyms)


def _segments(folded: str, synonyms: Mapping[str, str] | None) -> list[str]:
    if synonyms:
        folded = _synonym_re(tuple(synonyms)).sub(lambda m: synonyms[m.group(0)], folded)
    return [s for s in _SPLIT_RE.split(_BOILER_RE.sub(" ", folded)) if s]


@lru_cache(maxsize=8)
def _synonym_re(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, sorted(words, key=len, reverse=True))))


@dataclass(frozen=True)
class TextFeatures:
    """Character bigram+trigram counts and IDF-weighted words (jieba) of one text."""
    grams: Counter[str]
    gram_norm: float
    words: dict[str, float]
    word_mass: float


_ORG_SUFFIX = re.compile(r"(?:公司|集团|厂|合作社|医院|学校|小学|中学)$")
#: Function characters (虚字): they end a name when scanning back from its suffix (我在/说/和…公司)
#: and break character n-grams (no "的大", "厂的" noise).
_FUNCTION_CHARS = frozenset("我你他她们在说和与及是把被给从向对找到去来让为由将跟同等的了也都就还却时后里而但又才再很太")


def _cut_organisations(tokens: list[str]) -> tuple[list[str], list[tuple[str, ...]]]:
    """Tokens with organisation names (宏达建筑劳务有限公司, 华兴化工厂 …) cut out ("" marks the cut),
    and the names as token tuples.  A name counts as one word: the same employer or factory is
    named in a person's different matters, so its tokens must not outweigh the grievance."""
    kept: list[str] = []
    names: list[tuple[str, ...]] = []
    for tok in tokens:
        if _ORG_SUFFIX.search(tok):
            k = 0
            while k < 4 and k < len(kept) and kept[-1 - k] and kept[-1 - k] not in _FUNCTION_CHARS:
                k += 1
            if k:
                names.append((*kept[-k:], tok))
                del kept[-k:]
                kept.append("")
                continue
        kept.append(tok if tok not in _FUNCTION_CHARS else "")
    return kept, names


def text_features(text: str, synonyms: Mapping[str, str] | None = None) -> TextFeatures:
    """Features of ``text``.  Key numbers weigh as an unseen word; an organisation name too, split
    over its tails (实验小学, 报名实验小学) since where a name starts is a guess."""
    tok, idf, median = _tokenizer()
    folded = unicodedata.normalize("NFKC", text).lower()
    grams: Counter[str] = Counter()
    words = {n: median for n in _key_numbers(folded.replace(" ", ""))}
    for seg in _segments(folded, synonyms):
        kept, names = _cut_organisations(tok.lcut(seg, HMM=False))
        for name in names:
            words.update(("".join(name[-j:]), median / (len(name) - 1)) for j in range(2, len(name) + 1))
        words.update((w, idf.get(w, median)) for w in kept if len(w) > 1)
        for run in "".join(w or " " for w in kept).split():
            grams.update(run[i:i + 2] for i in range(len(run) - 1))
            grams.update(run[i:i + 3] for i in range(len(run) - 2))
    norm = math.sqrt(sum(c * c for c in grams.values()))
    return TextFeatures(grams, norm, words, sum(words.values()))


def text_similarity(fa: TextFeatures, fb: TextFeatures) -> tuple[float, list[str]]:
    """Similarity in 0..1 — the mean of the character n-gram cosine and the IDF-weighted Dice
    overlap of words — and the shared words of highest weight (for the reasons)."""
    if not fa.grams or not fb.grams:  # nothing but boilerplate: no evidence either way
        return 0.0, []
    small, large = (fa.grams, fb.grams) if len(fa.grams) <= len(fb.grams) else (fb.grams, fa.grams)
    cosine = sum(c * large[g] for g, c in small.items() if g in large) / (fa.gram_norm * fb.gram_norm)
    common = {w: v + fb.words[w] for w, v in fa.words.items() if w in fb.words}
    mass = fa.word_mass + fb.word_mass
    dice = sum(common.values()) / mass if mass else 0.0
    top = sorted(common, key=lambda w: (-common[w], w))[:4]
    return min(1.0, (cosine + dice) / 2), top


# ---------------------------------------------------------------- location and category

def location_similarity(a: str, b: str) -> tuple[float, str]:
    """问题属地: 1 same village, 0.85 same township, 0.6 same county, 0.2 same city, else 0.

    A 6-digit code against a 12-digit one is known to county level only.
    """
    a, b = (a or "").strip(), (b or "").strip()
    if not a or not b:
        return 0.0, "问题属地缺失"
    if a[:6] != b[:6]:
        if a[:4] == b[:4]:
            return 0.2, f"问题属地同市不同县({a[:6]}≠{b[:6]})"
        return 0.0, f"问题属地不同({a[:6]}≠{b[:6]})"
    if len(a) == len(b) == 12 and a[6:9] != "000":
        if a == b and a[9:] != "000":
            return 1.0, f"问题属地相同({a})"
        if a[:9] == b[:9]:
            return 0.85, f"问题属地同一乡镇({a[:9]})"
    return 0.6, f"问题属地同一县({a[:6]})"


def classic_name(code: str) -> str:
    """The name of a classic first-level category (``03`` → 城乡建设), or the code itself."""
    return CATEGORIES[int(code) - 1] if code.isdigit() and 1 <= int(code) <= len(CATEGORIES) else code


def category_similarity(new: Matter, earlier: Matter) -> tuple[float, str]:
    """内容分类: 1 same second level, 0.8 same code known to first level only, 0.5 same first level, else 0."""
    ca, cb = new.classic_code or new.category_code[:2], earlier.classic_code or earlier.category_code[:2]
    if ca != cb:
        return 0.0, f"内容分类不同({classic_name(ca)}≠{classic_name(cb)})"
    name = classic_name(ca)
    if new.category_code == earlier.category_code:
        full = len(new.category_code) > 2
        return (1.0 if full else 0.8), f"内容分类相同({name}/{new.category_code})"
    if len(new.category_code) <= 2 or len(earlier.category_code) <= 2:
        return 0.8, f"内容分类同一大类({name})"
    return 0.5, f"内容分类同一大类({name}: {new.category_code}≠{earlier.category_code})"


def rules_out(new: Matter, earlier_region: str, earlier_respondent: str) -> bool:
    """True when ``compare`` would reject the earlier matter before looking at the text: another
    county-level location, or two named respondents that differ.  Cheap (no tokenising)."""
    if location_similarity(new.region_code, earlier_region)[0] < 0.6:
        return True
    overlap = respondent_overlap(new.respondent, earlier_respondent)
    return overlap is not None and overlap < RESPONDENT_MIN_OVERLAP


# ---------------------------------------------------------------- the matcher

class MatterMatcher:
    """Decides 重复信访: same county, text similarity ≥ ``min_text`` and score ≥ ``threshold``.

    ``score = w_text·text + w_location·location + w_category·category`` (weights normalised).
    Text features are cached per text (``cache_size``), so a new petition compared with a
    petitioner's earlier ones is analysed once.  Thread-safe; build one and keep it.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, *, min_text: float = DEFAULT_MIN_TEXT,
                 weights: Mapping[str, float] | None = None, synonyms: Mapping[str, str] | None = None,
                 cache_size: int = 4096) -> None:
        raw = dict(DEFAULT_WEIGHTS if weights is None else weights)
        if set(raw) != set(DEFAULT_WEIGHTS) or min(raw.values()) < 0 or sum(raw.values()) <= 0:
            raise ValueError(f"weights must give {sorted(DEFAULT_WEIGHTS)} non-negative values")
        if not (0.0 <= threshold <= 1.0 and 0.0 <= min_text <= 1.0):
            raise ValueError("threshold and min_text must lie in 0..1")
        self.threshold, self.min_text = threshold, min_text
        self.weights = {k: v / sum(raw.values()) for k, v in raw.items()}
        self.synonyms: Mapping[str, str] = DEFAULT_SYNONYMS if synonyms is None else dict(synonyms)
        self._features = lru_cache(maxsize=cache_size)(lambda text: text_features(text, self.synonyms))

    def compare(self, new: Matter, earlier: Matter) -> MatchResult:
        """Score ``new`` against ``earlier``; reasons name location, category, text and the verdict."""
        loc, loc_reason = location_similarity(new.region_code, earlier.region_code)
        cat, cat_reason = category_similarity(new, earlier)
        text, shared = text_similarity(self._features(new.text), self._features(earlier.text))
        w = self.weights
        score = round(w["text"] * text + w["location"] * loc + w["category"] * cat, 4)
        reasons = [loc_reason, cat_reason, f"诉求文本相似度{text:.2f}"]
        if shared:
            reasons.append("共同要点: " + "、".join(shared))
        same = False
        respondents = respondent_overlap(new.respondent, earlier.respondent)
        if loc < 0.6:
            reasons.append("不在同一县级属地: 不构成重复信访")
        elif respondents is not None and respondents < RESPONDENT_MIN_OVERLAP:
            reasons.append(f"被反映人/单位不同({new.respondent}≠{earlier.respondent}): 不是同一事项")
        elif text < self.min_text:
            reasons.append(f"诉求文本相似度{text:.2f}<下限{self.min_text:.2f}: 不是同一事项")
        else:
            same = score >= self.threshold
            verdict = "判定为重复信访" if same else "不是同一事项"
            reasons.append(f"综合评分{score:.2f}{'≥' if same else '<'}阈值{self.threshold:.2f}: {verdict}")
        return MatchResult(score, same, reasons, {"text": round(text, 4), "location": loc, "category": cat})

    def best_match(self, new: Matter, candidates: Iterable[tuple[str, Matter]]) -> tuple[str, MatchResult] | None:
        """The candidate ``(id, result)`` judged the same matter with the highest score (the first
        on a tie), or None."""
        best: tuple[str, MatchResult] | None = None
        for key, earlier in candidates:
            if rules_out(new, earlier.region_code, earlier.respondent):
                continue  # compare would say "not the same matter" whatever the text
            result = self.compare(new, earlier)
            if result.same_matter and (best is None or result.score > best[1].score):
                best = (key, result)
        return best
