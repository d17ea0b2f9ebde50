"""Database models (SQLAlchemy 2 declarative, typed)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from functools import cache

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CheckConstraint, DateTime, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    # Stored in the session cookie at log-in and compared on every request: bumping it (log-out, a new
    # password, unlinking WhatsApp) makes every cookie issued before worthless, even a copied one.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=PASSWORD_HASH_METHOD)
        self.session_generation = (self.session_generation or 0) + 1  # a new password ends old sessions

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


# werkzeug's default; the dummy hash below uses the same, so both log-in paths cost the same.
PASSWORD_HASH_METHOD = "scrypt"


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=PASSWORD_HASH_METHOD)


def verify_password(user: User | None, password: str) -> bool:
    """The password check of a log-in, with the same work whether or not ``user`` exists.

    An unknown username is checked against a dummy hash of the same cost, so the time a failed
    log-in takes does not tell whether the account exists.
    """
    stored = user.password_hash if user is not None else _dummy_hash()
    matches = check_password_hash(stored, password)
    return matches and user is not None


class Message(db.Model):  # type: ignore[name-defined,misc]
    """A WhatsApp message of a tenant.

    ``sender`` is the other party: who sent it (direction ``in``) or to whom it
    was sent (direction ``out``).
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "message_id", name="uq_messages_tenant_id_message_id"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookEvent(db.Model):  # type: ignore[name-defined,misc]
    """One accepted webhook delivery; the primary key (X-Webhook-Id) de-duplicates retries."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SessionState(db.Model):  # type: ignore[name-defined,misc]
    """Last known WhatsApp session state of a tenant (from ``session.status`` events)."""

    __tablename__ = "session_states"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    previous_state: Mapped[str | None] = mapped_column(String(32))
    code: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
