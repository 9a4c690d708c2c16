import secrets

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, HttpUrl

from .store import Visit, db, targets, visited

app = FastAPI(title="links")


class NewLink(BaseModel):
    url: HttpUrl


@app.post("/links", status_code=201)
def shorten(link: NewLink) -> dict[str, str]:
    code = secrets.token_urlsafe(4)
    with db.connect() as conn:
        conn.execute("INSERT INTO links (code, url) VALUES (%s, %s)", (code, str(link.url)))
    return {"code": code, "url": str(link.url)}


@app.get("/{code}")
async def follow(code: str, request: Request) -> RedirectResponse:
    url = targets.get(code)
    if url is None:
        async with await db.connect_async() as conn:
            row = await (await conn.execute("SELECT url FROM links WHERE code = %s", (code,))).fetchone()
        if row is None:
            raise HTTPException(404, f"no link {code!r}")
        url = row[0]
        targets.set(code, url)
    await visited.publish_async(Visit(code=code, referrer=request.headers.get("referer")))
    return RedirectResponse(url, status_code=307)
