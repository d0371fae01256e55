"""Identity numbers and phone numbers: personal data helpers (个人信息).

* 居民身份证号码 (GB 11643): :func:`normalize_id_number` validates and returns
  the 18-character form; legacy 15-digit numbers (一代证) are converted.
* 电话号码: :func:`normalize_phone` accepts mainland mobiles (手机) and
  landlines (固定电话) and returns one canonical form.
* Masking for lists and logs (脱敏): :func:`mask_id_number`, :func:`mask_phone`.
* Matching without plaintext (盲索引): :func:`blind_index`.
* Encryption at rest (加密存储): :class:`FieldCipher` (Fernet, key rotation).
Pure Python, no I/O; nothing happens at import time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from datetime import date
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class IdentityError(ValueError):
    """An identity number or phone number is invalid; ``str(exc)`` is ``reason_en``."""

    def __init__(self, reason_en: str, reason_zh: str) -> None:
        super().__init__(reason_en)
        self.reason_en = reason_en
        self.reason_zh = reason_zh


# -- 居民身份证号码 (GB 11643) ------------------------------------------------

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
#: Province-level codes of GB/T 2260 (71 台湾, 81 香港, 82 澳门), plus 83, which the
#: residence permits of Taiwan residents (台湾居民居住证, 830000…) use.
PROVINCE_CODES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82", "83",
})
#: Earliest birth date accepted: 1850-01-01, since real numbers such as the domain
#: document's ``440524188001010014`` (born 1880) exist.
EARLIEST_BIRTH = date(1850, 1, 1)


def _clean(value: str) -> str:
    """NFKC (full-width digits → ASCII) and no whitespace at all."""
    return "".join(unicodedata.normalize("NFKC", value or "").split())


def id_check_char(first17: str) -> str:
    """Check character (校验码) of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize_id_number(value: str, *, today: date) -> str:
    """Validate an identity number and return its 18-character form (末位 X upper-case).

    Accepts 18-character numbers and legacy 15-digit ones (``19`` is inserted
    before the 2-digit year and the check character computed).  Checks the
    structure, the province part of the address code, the birth date (a real
    date, not after ``today``, not before 1850-01-01) and the check character.
    Raises :class:`IdentityError`.
    """
    s = _clean(value).upper()
    if not s:
        raise IdentityError("empty identity number", "身份证号码为空")
    if len(s) not in (15, 18):
        raise IdentityError(f"wrong length ({len(s)} characters; expected 18 or 15)",
                            f"位数错误（{len(s)}位，应为18位或15位）")
    if not (s.isdigit() if len(s) == 15 else (s[:17].isdigit() and (s[17].isdigit() or s[17] == "X"))):
        raise IdentityError("invalid characters (digits only; the last of 18 may be X)",
                            "含有非法字符（应为数字，18位号码末位可为X）")
    legacy = len(s) == 15
    first17 = s[:6] + "19" + s[6:] if legacy else s[:17]
    if first17[:2] not in PROVINCE_CODES:
        raise IdentityError(f"unknown province code {first17[:2]} in the address code",
                            f"地址码中的省级代码{first17[:2]}不存在")
    raw = first17[6:14]
    try:
        born = date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        raise IdentityError(f"invalid birth date {raw}", f"出生日期{raw}无效")
    if born > today:
        raise IdentityError(f"birth date {born.isoformat()} is after today", f"出生日期{raw}晚于当前日期")
    if born < EARLIEST_BIRTH:
        raise IdentityError(f"birth date {born.isoformat()} is before 1850-01-01", f"出生日期{raw}早于1850年1月1日")
    check = id_check_char(first17)
    if not legacy and s[17] != check:
        raise IdentityError(f"check character mismatch (expected {check})", f"校验码错误（应为{check}）")
    return first17 + check


def id_birth_date(id18: str) -> date:
    """Birth date (出生日期) of a normalized 18-character number."""
    s = _clean(id18)
    try:
        if len(s) != 18:
            raise ValueError(s)
        return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise IdentityError("not a normalized 18-character identity number", "不是规范的18位身份证号码")


def id_gender(id18: str) -> Literal["男", "女"]:
    """Gender (性别) of a normalized 18-character number: 17th digit odd = 男."""
    s = _clean(id18)
    if len(s) != 18 or not s[16].isdigit():
        raise IdentityError("not a normalized 18-character identity number", "不是规范的18位身份证号码")
    return "男" if int(s[16]) % 2 else "女"


def mask_id_number(value: str) -> str:
    """``4127**********3411``: first 4 and last 4 kept for a 15/18-character number;
    anything else is masked entirely (never leaks)."""
    s = _clean(value).upper()
    if len(s) in (15, 18) and re.fullmatch(r"\d+X?", s):
        return s[:4] + "*" * (len(s) - 8) + s[-4:]
    return "*" * len(s)


# -- 电话号码 -----------------------------------------------------------------

_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
#: 区号: 010 and 020–029 are 3 digits (with the 0), then an 8-digit number; the
#: others are 4 digits (0371…) with a 7- or 8-digit number.  Extension after -, 转, #, ext.
_LANDLINE = re.compile(
    r"(?:(?P<a3>010|02\d)-?(?P<n8>[1-9]\d{7})|(?P<a4>0[3-9]\d{2})-?(?P<n78>[1-9]\d{6,7}))"
    r"(?:(?:-|转|#|ext\.?|x)(?P<ext>\d{1,6}))?", re.IGNORECASE)


def normalize_phone(value: str) -> str:
    """Canonical phone number, or :class:`IdentityError`.

    Mobile (手机, ``1[3-9]`` + 9 digits, optional ``+86``/``0086``/``86``,
    spaces and dashes ignored) → 11 digits ``13812345678``.  Landline (固定电话)
    → ``0371-1234567``/``0371-12345678``/``010-12345678``, ``-123`` for an
    extension; ``+86 371 …`` and ``(0371)…`` are understood.  Service numbers
    (12345, 95555, 400…) and anything else are rejected.
    """
    s = _clean(value).replace("(", "").replace(")", "-")
    mobile = _MOBILE.fullmatch(s.replace("-", ""))
    if mobile:
        return mobile.group(1)
    for prefix in ("+86", "0086"):
        if s.startswith(prefix):
            rest = s[len(prefix):].lstrip("-")
            s = rest if rest.startswith("0") else "0" + rest
    land = _LANDLINE.fullmatch(s.replace("--", "-"))
    if not land:
        raise IdentityError("not a mainland mobile or landline number", "不是有效的手机号码或固定电话号码")
    area, number = (land["a3"], land["n8"]) if land["a3"] else (land["a4"], land["n78"])
    return f"{area}-{number}" + (f"-{land['ext']}" if land["ext"] else "")


def mask_phone(value: str) -> str:
    """``138****5678``; landline keeps area code and last 2 digits (``0371-******78``);
    an invalid value is masked entirely."""
    try:
        phone = normalize_phone(value)
    except IdentityError:
        return "*" * len(_clean(value))
    if "-" not in phone:
        return phone[:3] + "****" + phone[-4:]
    area, number = phone.split("-")[:2]
    return f"{area}-{'*' * (len(number) - 2)}{number[-2:]}"


# -- 盲索引 and encryption at rest ---------------------------------------------

def blind_index(value: str, key: bytes) -> str:
    """HMAC-SHA256 (hex) of a value, for equality search without storing plaintext.

    Pass the *normalized* value (output of :func:`normalize_id_number` or
    :func:`normalize_phone`); only NFKC, whitespace removal and upper-casing are
    applied here.  Use a key kept apart from the encryption key (see
    :func:`derive_key`); the same value and key always give the same index.
    """
    if not key:
        raise ValueError("blind_index needs a non-empty key")
    return hmac.new(key, _clean(value).upper().encode("utf-8"), hashlib.sha256).hexdigest()


def derive_key(secret: str, *, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 key of ``length`` bytes for one purpose (``info``) from a secret string."""
    if not secret:
        raise ValueError("an empty secret cannot derive a key")
    return HKDF(hashes.SHA256(), length=length, salt=b"xinfang.identity", info=info).derive(secret.encode("utf-8"))


class DecryptionError(ValueError):
    """A ciphertext could not be decrypted (tampered, truncated, or under an unknown key)."""


class FieldCipher:
    """Encrypt personal fields at rest with Fernet (AES-128-CBC + HMAC-SHA256, timestamped).

    ``FieldCipher(key)``: ``key`` is a urlsafe-base64 32-byte Fernet key, or several
    separated by commas for key rotation (密钥轮换): the first encrypts, every key
    decrypts (``MultiFernet``), and :meth:`rotate` re-encrypts a token under the
    first.  ``FieldCipher.from_secret(secret, *older)`` derives the key(s) from
    arbitrary secret strings with HKDF-SHA256.  ``None`` passes through.
    """

    def __init__(self, key: str) -> None:
        keys = [k.strip() for k in (key or "").split(",") if k.strip()]
        if not keys:
            raise ValueError("FieldCipher needs at least one Fernet key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise ValueError("not a Fernet key (urlsafe base64 of 32 bytes)") from None

    def __repr__(self) -> str:
        return "FieldCipher(<keys hidden>)"

    @staticmethod
    def generate_key() -> str:  # a fresh random Fernet key
        return Fernet.generate_key().decode("ascii")

    @classmethod
    def from_secret(cls, secret: str, *older: str) -> FieldCipher:
        """Cipher keyed by HKDF-SHA256(secret); ``older`` secrets still decrypt."""
        keys = [base64.urlsafe_b64encode(derive_key(s, info=b"xinfang field cipher v1")).decode("ascii")
                for s in (secret, *older)]
        return cls(",".join(keys))

    def encrypt(self, value: str | None) -> str | None:
        return None if value is None else self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | None) -> str | None:
        """Plaintext of a token; :class:`DecryptionError` when tampered or under an unknown key."""
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise DecryptionError("ciphertext is invalid, tampered with, or under an unknown key") from None

    def rotate(self, token: str | None) -> str | None:
        """Re-encrypt a token under the current (first) key."""
        return self.encrypt(self.decrypt(token))

