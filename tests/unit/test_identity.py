"""shared.identity: identity numbers, phones, masks, blind index, field cipher."""
from __future__ import annotations

from datetime import date

import pytest
from cryptography.fernet import Fernet

from shared.identity import (
    DecryptionError,
    FieldCipher,
    IdentityError,
    blind_index,
    id_birth_date,
    id_check_char,
    id_gender,
    mask_id_number,
    mask_phone,
    normalize_id_number,
    normalize_phone,
)

TODAY = date(2026, 11, 1)


def norm(value: str) -> str:
    return normalize_id_number(value, today=TODAY)


def reason(value: str) -> IdentityError:
    with pytest.raises(IdentityError) as info:
        norm(value)
    return info.value


# -- identity numbers ---------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("11010519491231002X", "11010519491231002X"),
    ("11010519491231002x", "11010519491231002X"),
    (" 110105 19491231 002X ", "11010519491231002X"),
    ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),  # full-width
    ("440524188001010014", "440524188001010014"),  # born 1880: accepted (≥ 1850)
])
def test_valid_numbers(value, expected):
    assert norm(value) == expected


def test_birth_date_and_gender():
    assert id_birth_date("11010519491231002X") == date(1949, 12, 31)
    assert id_gender("11010519491231002X") == "女"  # 17th digit 2
    assert id_birth_date("440524188001010014") == date(1880, 1, 1)
    assert id_gender("440524188001010014") == "男"  # 17th digit 1
    with pytest.raises(IdentityError):
        id_birth_date("1101051949")


def test_legacy_15_digit_conversion():
    # 130503 67 0401 001 → 130503 1967 0401 001 + check.
    # Σ dᵢ·wᵢ over 1,3,0,5,0,3,1,9,6,7,0,4,0,1,0,0,1 with 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2
    # = 7+27+0+25+0+12+2+9+36+21+0+36+0+5+0+0+2 = 182; 182 mod 11 = 6; "10X98765432"[6] = "6".
    assert norm("130503670401001") == "130503196704010016"
    assert id_check_char("13050319670401001") == "6"
    assert id_gender(norm("130503670401001")) == "男"


def test_bad_length():
    exc = reason("1101051949123100")
    assert "length" in exc.reason_en and "位数" in exc.reason_zh
    assert str(exc) == exc.reason_en
    assert "empty" in reason("  ").reason_en


@pytest.mark.parametrize("value", ["11010519491231A02X", "1101051949123100X2", "13050367040100X"])
def test_bad_characters(value):
    exc = reason(value)
    assert "characters" in exc.reason_en and "非法字符" in exc.reason_zh


@pytest.mark.parametrize("value", ["99010519491231002X", "000105194912310020", "700105194912310020"])
def test_bad_province(value):
    exc = reason(value)
    assert "province" in exc.reason_en and "省级代码" in exc.reason_zh


def _with_check(first17: str) -> str:
    return first17 + id_check_char(first17)


def test_impossible_date():
    exc = reason(_with_check("11010519490230002"))  # 30 February
    assert "invalid birth date 19490230" in exc.reason_en and "出生日期" in exc.reason_zh
    assert "invalid birth date" in reason(_with_check("11010519491301002")).reason_en  # month 13
    assert "invalid birth date" in reason("110105490230002").reason_en  # legacy form too


def test_future_and_too_early_birth_dates():
    exc = reason(_with_check("11010520261102002"))
    assert "after today" in exc.reason_en and "晚于" in exc.reason_zh
    assert normalize_id_number(_with_check("11010520261102002"), today=date(2026, 11, 2))
    assert "1850" in reason(_with_check("11010518491231002")).reason_en


def test_wrong_check_character():
    exc = reason("110105194912310021")
    assert exc.reason_en == "check character mismatch (expected X)"
    assert exc.reason_zh == "校验码错误（应为X）"
    assert "expected 4" in reason("440524188001010010").reason_en


def test_mask_id_number():
    assert mask_id_number("412726199001013411") == "4127**********3411"
    assert mask_id_number("11010519491231002x") == "1101**********002X"
    assert mask_id_number("130503670401001") == "1305*******1001"
    for garbage in ("1234567", "hello world 12345678", "4127261990010134119"):
        masked = mask_id_number(garbage)
        assert set(masked) <= {"*"} and masked
    assert mask_id_number("") == ""


# -- phones ------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("13812345678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("+8613812345678", "13812345678"),
    ("008613812345678", "13812345678"),
    ("8613812345678", "13812345678"),
    ("19912345678", "19912345678"),
    ("0371-12345678", "0371-12345678"),
    ("037112345678", "0371-12345678"),
    ("0377-6543210", "0377-6543210"),
    ("(0371) 65432100", "0371-65432100"),
    ("010-12345678", "010-12345678"),
    ("01012345678", "010-12345678"),
    ("010-12345678-123", "010-12345678-123"),
    ("021 6543 2100", "021-65432100"),
    ("0371-65432100转8001", "0371-65432100-8001"),
    ("+86 10 87654321", "010-87654321"),
])
def test_phone_accepted(value, expected):
    assert normalize_phone(value) == expected


@pytest.mark.parametrize("value", [
    "12345", "110", "95555", "400-123-4567", "1381234567", "138123456789", "12812345678",
    "010-1234567",  # 3-digit area codes take 8-digit numbers
    "0371-123456", "0371-0123456", "011-12345678", "0012345678", "abc", "",
])
def test_phone_rejected(value):
    with pytest.raises(IdentityError) as info:
        normalize_phone(value)
    assert info.value.reason_en and info.value.reason_zh


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "138****5678"
    assert mask_phone("0371-12345678") == "0371-******78"
    assert mask_phone("010-12345678-123") == "010-******78"
    assert mask_phone("0377-6543210") == "0377-*****10"
    assert mask_phone("not a phone 12345") == "*" * len("notaphone12345")


# -- blind index and cipher ---------------------------------------------------

def test_blind_index_stable_and_key_dependent():
    a = blind_index("11010519491231002X", b"k1")
    assert a == blind_index("11010519491231002X", b"k1")
    assert a == blind_index(" 11010519491231002x", b"k1")
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != blind_index("11010519491231002X", b"k2")
    assert a != blind_index("440524188001010014", b"k1")
    with pytest.raises(ValueError):
        blind_index("x", b"")


def test_cipher_round_trip():
    cipher = FieldCipher(Fernet.generate_key().decode())
    token = cipher.encrypt("11010519491231002X")
    assert token and "11010519491231002X" not in token
    assert cipher.decrypt(token) == "11010519491231002X"
    assert cipher.decrypt(cipher.encrypt("河南省南阳市")) == "河南省南阳市"
    assert cipher.encrypt(None) is None and cipher.decrypt(None) is None
    assert "FieldCipher(<keys hidden>)" == repr(cipher)


def test_cipher_from_secret_is_deterministic_per_secret():
    one, same, other = FieldCipher.from_secret("s3cret"), FieldCipher.from_secret("s3cret"), FieldCipher.from_secret("x")
    token = one.encrypt("13812345678")
    assert same.decrypt(token) == "13812345678"
    with pytest.raises(DecryptionError):
        other.decrypt(token)


def test_cipher_rotation():
    old_key, new_key = FieldCipher.generate_key(), FieldCipher.generate_key()
    old = FieldCipher(old_key)
    rotated = FieldCipher(f"{new_key}, {old_key}")
    legacy_token = old.encrypt("13812345678")
    assert rotated.decrypt(legacy_token) == "13812345678"  # old key still decrypts
    fresh = rotated.encrypt("13812345678")
    assert FieldCipher(new_key).decrypt(fresh) == "13812345678"  # new key encrypts
    with pytest.raises(DecryptionError):
        old.decrypt(fresh)
    assert FieldCipher(new_key).decrypt(rotated.rotate(legacy_token)) == "13812345678"
    secrets = FieldCipher.from_secret("new", "old")
    assert secrets.decrypt(FieldCipher.from_secret("old").encrypt("a")) == "a"


def test_cipher_tampered_and_bad_keys():
    cipher = FieldCipher(FieldCipher.generate_key())
    token = cipher.encrypt("11010519491231002X")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered)
    with pytest.raises(DecryptionError):
        cipher.decrypt("not a token")
    with pytest.raises(ValueError):
        FieldCipher("too-short")
    with pytest.raises(ValueError):
        FieldCipher("")
