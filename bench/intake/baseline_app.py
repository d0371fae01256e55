"""The baseline: a bare Flask + marshmallow + SQLAlchemy endpoint that validates a 10-field body
and inserts one row.  Served by gunicorn exactly like ``xinfang serve`` (same workers/threads):

    BENCH_BASELINE_DB=postgresql+psycopg://… gunicorn -w 2 --threads 4 'bench.intake.baseline_app:create_app()'

Same engine settings as the services (``shared.db.create_db_engine``: pool 10 + 10 overflow,
pre-ping), one transaction per request, 201 with the new row's id.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

from flask import Flask, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import DateTime, Integer, String, Text, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

CHANNELS = ("网上信访", "来信", "来电", "传真", "来访", "12345热线", "领导信箱")
PURPOSES = ("求决", "申诉", "检举控告", "意见建议", "咨询")


class Base(DeclarativeBase):
    pass


class Registration(Base):
    __tablename__ = "registrations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    system: Mapped[str] = mapped_column(String(64))
    county_no: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    petitioned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    people_count: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    request_text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(8))
    region_code: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegistrationIn(Schema):
    system = fields.String(required=True, validate=validate.Length(1, 64))
    county_no = fields.String(required=True, validate=validate.Length(1, 64))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    petitioned_at = fields.AwareDateTime(required=True)
    people_count = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 100_000))
    title = fields.String(required=True, validate=validate.Length(1, 100))
    request_text = fields.String(required=True, validate=validate.Length(1, 5000))
    category = fields.String(required=True, validate=validate.Regexp(r"^\d{2}(\d{2})?$"))
    region_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}(\d{6})?$"))


def create_schema(url: str) -> None:
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def create_app(url: str | None = None) -> Flask:
    url = url or os.environ["BENCH_BASELINE_DB"]
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    schema = RegistrationIn()
    app = Flask(__name__)

    @app.post("/register")
    def register():
        try:
            data = schema.load(request.get_json(force=True))
        except ValidationError as exc:
            return jsonify(errors=exc.messages), 422
        row = Registration(id=uuid.uuid4().hex, received_at=datetime.now(timezone.utc), **data)
        with sessions.begin() as session:
            session.add(row)
        return jsonify(id=row.id), 201

    @app.get("/ready")
    def ready():
        return "ok"

    return app
