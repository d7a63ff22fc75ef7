"""The reader-study web app (FastAPI + Jinja2 with autoescaping).

Pages are server-rendered; the viewer (``static/viewer.js``) draws the images on a
canvas with window/level, zoom and pan, and posts answers as ordinary forms.
:func:`create_app` builds the app for a database URL; ``mammosynth serve`` runs it.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from . import service as svc
from .analysis import analyze_study, score_table
from .db import DEFAULT_DB, Answer, CaseImage, Study, User, open_db
from .imaging import encode_png
from .security import PRELOGIN_COOKIE, SECURITY_HEADERS, SESSION_COOKIE, RateLimiter, same
from .stats import write_csv, write_imrmc
from .studies import STUDY_KINDS, StudySpec, parse_sources

HERE = Path(__file__).parent


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def create_app(db_url: str = DEFAULT_DB, secure_cookies: bool = False, login_limit: int = 5) -> FastAPI:
    Session = open_db(db_url)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    templates = Jinja2Templates(env=env)
    limiter = RateLimiter(limit=login_limit)
    app = FastAPI(title="mammosynth reader studies", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessionmaker = Session
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(HTTPError)
    async def http_error(request: Request, exc: HTTPError):
        if request.headers.get("accept", "").startswith("application/json") or request.url.path.endswith(".json"):
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return templates.TemplateResponse(request, "error.html", {"message": exc.message, "user": None},
                                          status_code=exc.status)

    # -- helpers ---------------------------------------------------------------------
    def current(request: Request, db, roles: tuple[str, ...] | None = None) -> tuple[User, object]:
        found = svc.session_user(db, request.cookies.get(SESSION_COOKIE))
        if found is None:
            raise HTTPError(401, "please log in")
        user, sess = found
        if roles and user.role not in roles:
            raise HTTPError(403, "not allowed for your role")
        return user, sess

    async def checked_form(request: Request, sess) -> dict:
        form = dict(await request.form())
        token = form.get("csrf") or request.headers.get("x-csrf-token")
        if not same(token, sess.csrf):
            raise HTTPError(403, "missing or wrong CSRF token; reload the page")
        return form

    def page(request, name, user, sess, status=200, **ctx):
        return templates.TemplateResponse(request, name, {"user": user, "csrf": sess.csrf if sess else "", **ctx},
                                          status_code=status)

    def run(fn):
        """Map service exceptions onto HTTP errors."""
        try:
            return fn()
        except svc.Denied as e:
            raise HTTPError(403, str(e)) from None
        except svc.NotFound as e:
            raise HTTPError(404, str(e)) from None
        except svc.Conflict as e:
            raise HTTPError(409, str(e)) from None
        except (ValueError, FileNotFoundError) as e:
            raise HTTPError(400, str(e)) from None

    # -- login -------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request):
        pre = secrets.token_urlsafe(24)
        resp = templates.TemplateResponse(request, "login.html", {"user": None, "csrf": pre, "error": None})
        resp.set_cookie(PRELOGIN_COOKIE, pre, httponly=True, samesite="strict", secure=secure_cookies)
        return resp

    @app.post("/login")
    async def login(request: Request):
        form = dict(await request.form())
        if not same(form.get("csrf"), request.cookies.get(PRELOGIN_COOKIE)):
            raise HTTPError(403, "missing or wrong CSRF token; reload the login page")
        username = str(form.get("username", ""))[:svc.USERNAME_MAX]
        ip = request.client.host if request.client else "?"
        keys = (f"ip:{ip}", f"user:{username}")
        if limiter.blocked(*keys):
            raise HTTPError(429, "too many failed logins; wait a few minutes")
        with Session.begin() as db:
            user = svc.authenticate(db, username, str(form.get("password", "")))
            if user is None:
                limiter.fail(*keys)
                return templates.TemplateResponse(request, "login.html", {"user": None, "csrf": form.get("csrf"),
                                                  "error": "wrong username or password"}, status_code=401)
            limiter.reset(f"user:{username}")
            sess = svc.open_session(db, user)
            token = sess.token
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies,
                        max_age=svc.SESSION_HOURS * 3600)
        resp.delete_cookie(PRELOGIN_COOKIE)
        return resp

    @app.post("/logout")
    async def logout(request: Request):
        with Session.begin() as db:
            _, sess = current(request, db)
            await checked_form(request, sess)
            svc.close_session(db, sess.token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE)
        return resp

    # -- home ----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request):
        with Session() as db:
            found = svc.session_user(db, request.cookies.get(SESSION_COOKIE))
            if found is None:
                return RedirectResponse("/login", status_code=303)
            user, sess = found
            if user.role == "admin":
                studies = list(db.scalars(select(Study).order_by(Study.id)))
                users = list(db.scalars(select(User).order_by(User.username)))
                return page(request, "admin.html", user, sess, studies=studies, users=users, kinds=STUDY_KINDS)
            rows = []
            for a_study in db.scalars(select(Study).join(svc.Assignment, svc.Assignment.study_id == Study.id)
                                      .where(svc.Assignment.user_id == user.id).order_by(Study.id)):
                _, a = svc.get_study(db, a_study.id, user)
                n = svc.current_session_no(db, a_study, user)
                rows.append((a_study, svc.next_case(db, a_study, a, user, n)))
            history = svc.training_history(db, user) if user.role == "trainee" else []
            return page(request, "home.html", user, sess, rows=rows, history=history)

    # -- admin -----------------------------------------------------------------------------
    @app.post("/admin/users")
    async def add_user(request: Request):
        with Session.begin() as db:
            user, sess = current(request, db, ("admin",))
            form = await checked_form(request, sess)
            run(lambda: svc.create_user(db, str(form.get("username", "")), str(form.get("password", "")),
                                        str(form.get("role", ""))))
        return RedirectResponse("/", status_code=303)

    @app.post("/admin/studies")
    async def add_study(request: Request):
        with Session.begin() as db:
            user, sess = current(request, db, ("admin",))
            form = await checked_form(request, sess)
            readers = [r for r in (await request.form()).getlist("readers") if r]

            def make():
                spec = StudySpec(name=str(form.get("name", "")), kind=str(form.get("kind", "")),
                                 scale=str(form.get("scale", "5point")), sources=parse_sources(str(form.get("sources", ""))),
                                 seed=int(form.get("seed") or 0), group_views=form.get("group_views") == "on")
                return svc.create_study(db, spec, user, readers)

            study = run(make)
            sid = study.id
        return RedirectResponse(f"/study/{sid}/results", status_code=303)

    @app.post("/admin/studies/{sid}/assign")
    async def assign(request: Request, sid: int):
        with Session.begin() as db:
            user, sess = current(request, db, ("admin",))
            form = await checked_form(request, sess)
            study, _ = run(lambda: svc.get_study(db, sid, user))
            run(lambda: svc.assign_reader(db, study, str(form.get("username", ""))))
        return RedirectResponse(f"/study/{sid}/results", status_code=303)

    # -- reading ---------------------------------------------------------------------------
    @app.get("/study/{sid}/read", response_class=HTMLResponse)
    def read(request: Request, sid: int, tier: int | None = None, session: int | None = None):
        with Session() as db:
            user, sess = current(request, db, ("reader", "trainee"))
            study, a = run(lambda: svc.get_study(db, sid, user))
            n = svc.current_session_no(db, study, user)
            if session is not None and study.kind == "training" and session in (n, n + 1):
                n = session
            prog = svc.next_case(db, study, a, user, n, tier)
            images = svc.images_of(db, prog.case) if prog.case else []
            return page(request, "read.html", user, sess, study=study, progress=prog, images=images, session_no=n,
                        tier=tier, rating_max=svc.rating_max(study))

    @app.post("/study/{sid}/answer")
    async def answer(request: Request, sid: int):
        with Session.begin() as db:
            user, sess = current(request, db, ("reader", "trainee"))
            form = await checked_form(request, sess)
            study, _ = run(lambda: svc.get_study(db, sid, user))
            case = run(lambda: svc.case_by_token(db, study, str(form.get("case", ""))))
            n = svc.current_session_no(db, study, user)
            try:
                req_n = int(form.get("session") or n)
            except ValueError:
                raise HTTPError(400, "bad session number") from None
            if study.kind == "training" and req_n in (n, n + 1):
                n = req_n

            def save():
                rating = form.get("rating")
                rating = float(rating) if rating not in (None, "") else None
                marks = json.loads(str(form.get("marks") or "[]"))
                elapsed = int(min(max(float(form.get("elapsed_ms") or 0), 0.0), 1e9)) or None
                return svc.record_answer(db, study, user, case, rating, marks, n, elapsed)

            try:
                run(save)
            except json.JSONDecodeError:
                raise HTTPError(400, "marks must be JSON") from None
            tier = form.get("tier") or ""
            token = case.token
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse({"ok": True})
        if study.kind == "training":
            return RedirectResponse(f"/study/{sid}/feedback/{token}?session={n}&tier={tier}", status_code=303)
        return RedirectResponse(f"/study/{sid}/read", status_code=303)

    @app.post("/study/{sid}/training/new")
    async def training_new(request: Request, sid: int):
        with Session.begin() as db:
            user, sess = current(request, db, ("trainee",))
            form = await checked_form(request, sess)
            study, _ = run(lambda: svc.get_study(db, sid, user))
            n = svc.new_training_session(db, study, user)
            tier = form.get("tier") or ""
        return RedirectResponse(f"/study/{sid}/read?session={n}" + (f"&tier={tier}" if tier else ""), status_code=303)

    @app.get("/study/{sid}/feedback/{token}", response_class=HTMLResponse)
    def feedback(request: Request, sid: int, token: str, session: int = 1, tier: str = ""):
        with Session() as db:
            user, sess = current(request, db, ("trainee",))
            study, _ = run(lambda: svc.get_study(db, sid, user))
            case = run(lambda: svc.case_by_token(db, study, token))
            truth = run(lambda: svc.truth_for(db, study, user, case))
            ans = db.scalar(select(Answer).where(Answer.case_id == case.id, Answer.user_id == user.id,
                                                 Answer.session_no == session))
            if ans is None:
                raise HTTPError(404, "no answer for this case in this session")
            imgs = svc.images_of(db, case)
            marks = [{k: (v / imgs[m["image"]].scale if k in ("x", "y", "x0", "y0", "x1", "y1") else v)
                      for k, v in m.items()} for m in json.loads(ans.marks)]
            scores = list(db.scalars(select(Answer.score).where(Answer.study_id == sid, Answer.user_id == user.id,
                                                                Answer.session_no == session)))
            session_score = round(100 * sum(s or 0 for s in scores) / len(scores), 1)
            return page(request, "feedback.html", user, sess, study=study, images=imgs, truth=truth, marks=marks,
                        case_score=round(100 * (ans.score or 0)), session_score=session_score, n_done=len(scores),
                        session_no=session, tier=tier)

    @app.get("/img/{token}.png")
    def image(request: Request, token: str):
        with Session() as db:
            user, _ = current(request, db)
            img = db.scalar(select(CaseImage).where(CaseImage.token == token))
            if img is None:
                raise HTTPError(404, "no such image")
            case = db.get(svc.Case, img.case_id)
            run(lambda: svc.get_study(db, case.study_id, user))
            path, scale = img.path, img.scale
        try:
            data = encode_png(path, scale)
        except (OSError, ValueError):
            raise HTTPError(500, "image unavailable") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, no-store"})

    @app.get("/study/{sid}/truth/{token}")
    def truth(request: Request, sid: int, token: str):
        with Session() as db:
            user, _ = current(request, db)
            study, _ = run(lambda: svc.get_study(db, sid, user))
            case = run(lambda: svc.case_by_token(db, study, token))
            return JSONResponse(run(lambda: svc.truth_for(db, study, user, case)))

    # -- results -----------------------------------------------------------------------------
    @app.get("/study/{sid}/results", response_class=HTMLResponse)
    def results(request: Request, sid: int):
        with Session() as db:
            user, sess = current(request, db, ("admin",))
            study, _ = run(lambda: svc.get_study(db, sid, user))
            res = analyze_study(db, study)
            readers = list(db.execute(select(User.username).join(svc.Assignment, svc.Assignment.user_id == User.id)
                                      .where(svc.Assignment.study_id == sid)).scalars())
            return page(request, "results.html", user, sess, study=study, res=res, assigned=readers)

    @app.get("/study/{sid}/results.json")
    def results_json(request: Request, sid: int):
        with Session() as db:
            user, _ = current(request, db, ("admin",))
            study, _ = run(lambda: svc.get_study(db, sid, user))
            return Response(analyze_study(db, study).to_json(), media_type="application/json")

    @app.get("/study/{sid}/export.{fmt}")
    def export(request: Request, sid: int, fmt: str):
        with Session() as db:
            user, _ = current(request, db, ("admin",))
            study, _ = run(lambda: svc.get_study(db, sid, user))
            if fmt not in ("csv", "imrmc"):
                raise HTTPError(404, "export formats: csv, imrmc")
            table = score_table(db, study)
            text = write_csv(table) if fmt == "csv" else write_imrmc(table)
        return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="study-{sid}.{fmt}"'})

    return app
