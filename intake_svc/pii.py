"""Personal data (个人信息): encryption at rest, blind indexes, masking, audited reveal.

Identity numbers and phones are stored encrypted (Fernet, ``XINFANG_PII_KEY``) and
matched through keyed hashes (``XINFANG_PII_INDEX_KEY``), never in plaintext.
Responses and logs show them masked (``4127**********3411``); a caller whose role is
in ``XINFANG_PII_FULL_ROLES`` may ask for the full value, and every such read is
written to ``pii_access_log``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.orm import Session

from intake_svc.models import Petition, PiiAccess
from shared import clock
from shared.auth import Principal
from shared.config import Settings
from shared.identity import FieldCipher, blind_index, mask_id_number, mask_phone


@dataclass(frozen=True)
class PiiVault:
    settings: Settings

    @cached_property
    def cipher(self) -> FieldCipher:
        if self.settings.pii_key:
            return FieldCipher(self.settings.pii_key)
        return FieldCipher.from_secret(self.settings.secret_key + ":pii")

    @cached_property
    def index_key(self) -> bytes:
        if self.settings.pii_index_key:
            return self.settings.pii_index_key.encode()
        return hashlib.sha256((self.settings.secret_key + ":pii-index").encode()).digest()

    def blind(self, value: str | None) -> str | None:
        return blind_index(value, self.index_key) if value else None

    def seal(self, value: str | None) -> str | None:
        return self.cipher.encrypt(value) if value else None

    def open(self, token: str | None) -> str | None:
        return self.cipher.decrypt(token) if token else None

    def may_reveal(self, principal: Principal) -> bool:
        return principal.role in self.settings.pii_full_roles


def petitioner_view(vault: PiiVault, person, *, reveal: bool,
                    plain: tuple[str | None, str | None] | None = None) -> dict:
    """A petitioner as the API shows it: masked unless ``reveal``.  ``plain``: the (identity number,
    phone) this person's encrypted values hold, when the caller already has them in clear."""
    if plain is not None:
        id_number, phone = plain
    else:
        id_number, phone = vault.open(person.id_number_enc), vault.open(person.phone_enc)
    return {
        "name": person.name,
        "id_number": (id_number if reveal else mask_id_number(id_number)) if id_number else None,
        "phone": (phone if reveal else mask_phone(phone)) if phone else None,
        "address_code": person.address_code,
        "address": person.address,
        "main": person.seq == 0,
    }


def audit_reveal(session: Session, *, principal: Principal, petition: Petition, via: str) -> None:
    """Record that ``principal`` read the full personal data of ``petition``."""
    fields = sorted({f for p in petition.petitioners for f, v in (("id_number", p.id_number_enc),
                                                                   ("phone", p.phone_enc)) if v})
    session.add(PiiAccess(at=clock.now(), actor=principal.username or principal.user_id, role=principal.role,
                          petition_id=petition.id, fields=fields, via=via))
