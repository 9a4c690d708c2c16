import csv
import io

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from skyrig import Bucket, Secret

from .counting import db

exports = Bucket("exports")
admin_token = Secret("admin-token")


async def top(request: Request) -> JSONResponse:
    with db.connect() as conn:
        rows = conn.execute("SELECT code, count FROM visits ORDER BY count DESC, code LIMIT 10").fetchall()
    return JSONResponse({code: count for code, count in rows})


async def export(request: Request) -> PlainTextResponse | JSONResponse:
    if request.headers.get("authorization") != f"Bearer {admin_token.value}":
        return JSONResponse({"error": "admin only"}, status_code=403)
    with db.connect() as conn:
        rows = conn.execute("SELECT code, count FROM visits ORDER BY code").fetchall()
    out = io.StringIO()
    csv.writer(out).writerows([("code", "count"), *rows])
    exports.upload("visits.csv", out.getvalue().encode())
    return PlainTextResponse(exports.signed_url("visits.csv", expires_in="5m"))


app = Starlette(routes=[Route("/top", top), Route("/export", export, methods=["POST"])])
