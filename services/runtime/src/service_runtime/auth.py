"""Bearer tokens: signed (HS256), with expiry; a client token is bound to one client, an admin token to one business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ISSUER = "booking"
ALGORITHM = "HS256"
CLIENT_TTL = timedelta(hours=12)
ADMIN_TTL = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: a client of a business, or an admin of a business."""

    role: Literal["client", "admin"]
    subject: str
    business_id: str


class TokenCodec:
    """Issues tokens with the current secret; verifies with it or, during a rotation, with the previous one."""

    def __init__(self, secret: str, *, previous: str | None = None) -> None:
        self._secret = secret
        self._verifying = [secret] if not previous else [secret, previous]

    def issue(self, principal: Principal, *, ttl: timedelta | None = None, now: datetime | None = None) -> str:
        """Return a signed token for the principal, expiring after ttl."""
        now = now or datetime.now(UTC)
        ttl = ttl or (CLIENT_TTL if principal.role == "client" else ADMIN_TTL)
        claims = {
            "iss": ISSUER,
            "sub": principal.subject,
            "role": principal.role,
            "bid": principal.business_id,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """Return the token's principal, or raise jwt.InvalidTokenError."""
        for secret in self._verifying:
            try:
                claims = jwt.decode(
                    token, secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub", "iss"]}
                )
                break
            except jwt.InvalidSignatureError:
                if secret is self._verifying[-1]:
                    raise
        role = claims.get("role")
        if role not in ("client", "admin") or not isinstance(claims.get("bid"), str):
            raise jwt.InvalidTokenError("token has no valid role or business")
        return Principal(role=role, subject=str(claims["sub"]), business_id=claims["bid"])


_bearer = HTTPBearer(auto_error=False)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail={"code": "unauthorized", "message": message},
        headers={"WWW-Authenticate": "Bearer"},
    )


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Verify the bearer token of the request (401 when missing, invalid or expired)."""
    if credentials is None:
        raise _unauthorized("A bearer token is required.")
    codec: TokenCodec = request.app.state.tokens
    try:
        return codec.verify(credentials.credentials)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The session has expired: open the portal link again.") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("The bearer token is not valid.") from None


async def current_client(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The calling client (403 for any other role)."""
    if principal.role != "client":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail={"code": "forbidden", "message": "A client token is required."}
        )
    return principal


async def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The calling admin (403 for any other role)."""
    if principal.role != "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail={"code": "forbidden", "message": "An admin token is required."}
        )
    return principal


CurrentClient = Annotated[Principal, Depends(current_client)]
CurrentAdmin = Annotated[Principal, Depends(current_admin)]
