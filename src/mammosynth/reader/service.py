"""The study logic behind the web app and the CLI, on a SQLAlchemy session.

Every function takes the session and plain values, raises :class:`Denied` (403),
:class:`NotFound` (404), :class:`Conflict` (409) or ValueError (400), and never
commits half a change: callers commit once at the end of a request.
"""
from __future__ import annotations

import datetime as _dt
import json
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import scoring
from .db import ROLES, Answer, Assignment, AuthSession, Case, CaseImage, Study, User, utcnow
from .studies import StudySpec, new_token, plan_cases, reader_order, served_scale, stored_dims

_hasher = PasswordHasher()
SESSION_HOURS = 12
USERNAME_MAX = 64


class Denied(Exception):
    pass


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


# -- users and sessions -------------------------------------------------------------
def create_user(db: Session, username: str, password: str, role: str) -> User:
    username = username.strip()
    if not username or len(username) > USERNAME_MAX or any(c.isspace() for c in username):
        raise ValueError(f"username must be 1-{USERNAME_MAX} characters without spaces")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if db.scalar(select(User).where(User.username == username)):
        raise Conflict(f"user {username!r} exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role)
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, username: str, password: str) -> User | None:
    user = db.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        _hasher.hash(password)  # same work whether or not the user exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def open_session(db: Session, user: User) -> AuthSession:
    s = AuthSession(token=secrets.token_urlsafe(32), user_id=user.id, csrf=secrets.token_urlsafe(32),
                    expires_at=utcnow() + _dt.timedelta(hours=SESSION_HOURS))
    db.add(s)
    db.flush()
    return s


def session_user(db: Session, token: str | None) -> tuple[User, AuthSession] | None:
    if not token:
        return None
    s = db.get(AuthSession, token)
    if s is None or s.expires_at < utcnow():
        return None
    return db.get(User, s.user_id), s


def close_session(db: Session, token: str) -> None:
    s = db.get(AuthSession, token)
    if s is not None:
        db.delete(s)


# -- studies ------------------------------------------------------------------------
def create_study(db: Session, spec: StudySpec, admin: User, readers: list[str]) -> Study:
    if admin.role != "admin":
        raise Denied("only admins create studies")
    plans = plan_cases(spec)
    study = Study(name=spec.name.strip(), kind=spec.kind, scale=spec.scale, settings=spec.to_json(), created_by=admin.id)
    db.add(study)
    db.flush()
    for plan in plans:
        case = Case(study_id=study.id, token=new_token(), label=plan.label[:200], truth=json.dumps(plan.truth), tier=plan.tier)
        db.add(case)
        db.flush()
        for pos, im in enumerate(plan.images):
            h, w = (im.record.height, im.record.width) if im.record.height else stored_dims(im.path)
            db.add(CaseImage(case_id=case.id, token=new_token(), position=pos, view=im.record.view,
                             path=str(im.path.resolve()), height=h, width=w, scale=served_scale(h, w)))
    for name in readers:
        assign_reader(db, study, name)
    db.flush()
    return study


def assign_reader(db: Session, study: Study, username: str) -> Assignment:
    user = db.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound(f"no user {username!r}")
    if user.role == "admin":
        raise ValueError("admins do not read studies; create a reader or trainee account")
    if study.kind == "training" and user.role != "trainee" or study.kind != "training" and user.role != "reader":
        raise ValueError(f"{study.kind} studies are read by {'trainees' if study.kind == 'training' else 'readers'}")
    existing = db.scalar(select(Assignment).where(Assignment.study_id == study.id, Assignment.user_id == user.id))
    if existing:
        return existing
    a = Assignment(study_id=study.id, user_id=user.id, seed=secrets.randbelow(2**31))
    db.add(a)
    db.flush()
    return a


def get_study(db: Session, study_id: int, user: User) -> tuple[Study, Assignment | None]:
    study = db.get(Study, study_id)
    if study is None:
        raise NotFound("no such study")
    if user.role == "admin":
        return study, None
    a = db.scalar(select(Assignment).where(Assignment.study_id == study_id, Assignment.user_id == user.id))
    if a is None:
        raise NotFound("no such study")  # not assigned: do not confirm that it exists
    return study, a


def cases_of(db: Session, study: Study) -> list[Case]:
    return list(db.scalars(select(Case).where(Case.study_id == study.id).order_by(Case.id)))


def images_of(db: Session, case: Case) -> list[CaseImage]:
    return list(db.scalars(select(CaseImage).where(CaseImage.case_id == case.id).order_by(CaseImage.position)))


def current_session_no(db: Session, study: Study, user: User) -> int:
    """Training: the open session (the newest); other studies have one session, 0."""
    if study.kind != "training":
        return 0
    n = db.scalar(select(func.max(Answer.session_no)).where(Answer.study_id == study.id, Answer.user_id == user.id))
    return int(n or 1)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    case: Case | None  # next case to read, None when finished


def next_case(db: Session, study: Study, a: Assignment, user: User, session_no: int, tier: int | None = None) -> Progress:
    """The reader's next unanswered case in their own random order (resume = this)."""
    q = select(Case.id).where(Case.study_id == study.id).order_by(Case.id)
    if tier is not None:
        q = q.where(Case.tier == tier)
    ids = list(db.scalars(q))  # ids only: cheap even for thousands of cases
    answered = set(db.scalars(select(Answer.case_id).where(
        Answer.study_id == study.id, Answer.user_id == user.id, Answer.session_no == session_no)))
    done = sum(1 for i in ids if i in answered)
    nxt = next((ids[k] for k in reader_order(len(ids), a.seed) if ids[k] not in answered), None)
    return Progress(done, len(ids), db.get(Case, nxt) if nxt is not None else None)


def case_by_token(db: Session, study: Study, token: str) -> Case:
    case = db.scalar(select(Case).where(Case.study_id == study.id, Case.token == token))
    if case is None:
        raise NotFound("no such case")
    return case


def rating_max(study: Study) -> float:
    return 5.0 if study.scale == "5point" else 100.0


def record_answer(db: Session, study: Study, user: User, case: Case, rating: float | None, marks_raw,
                  session_no: int, elapsed_ms: int | None = None) -> Answer:
    """Append one answer; a second answer to the same case in the same session is a
    Conflict (the first stands)."""
    top = rating_max(study)
    if study.kind == "realsynth":
        if rating is None or not (0 <= rating <= top) or (study.scale == "5point" and rating not in (1, 2, 3, 4, 5)):
            raise ValueError("rating must be 1-5" if study.scale == "5point" else "rating must be 0-100")
        marks: list[dict] = []
    else:
        imgs = images_of(db, case)
        marks = scoring.validate_marks(marks_raw, len(imgs), [(i.height, i.width) for i in imgs],
                                       [i.scale for i in imgs], top)
        rating = max((m["rating"] for m in marks), default=0.0)
    score = None
    truth = case.truth_dict
    if study.kind == "training":
        imgs = images_of(db, case)
        score = scoring.training_score(marks, truth["lesions"], [min(i.height, i.width) for i in imgs])
    ans = Answer(study_id=study.id, case_id=case.id, user_id=user.id, session_no=session_no, rating=rating,
                 marks=json.dumps(marks), score=score, elapsed_ms=elapsed_ms)
    try:
        with db.begin_nested():
            db.add(ans)
    except IntegrityError:
        raise Conflict("this case is already answered") from None
    return ans


def truth_for(db: Session, study: Study, user: User, case: Case) -> dict:
    """The truth of a case: admins always; trainees after answering it in training;
    readers never."""
    if user.role == "reader":
        raise Denied("readers cannot see the truth")
    if user.role == "trainee":
        answered = db.scalar(select(Answer.id).where(Answer.case_id == case.id, Answer.user_id == user.id))
        if study.kind != "training" or answered is None:
            raise Denied("the truth is shown after your answer")
    imgs = images_of(db, case)
    t = case.truth_dict
    lesions = [{**les, "box": [v / imgs[les["image"]].scale for v in les["box"]]} for les in t["lesions"]]
    return {"case": case.token, "synthetic": t["synthetic"], "abnormal": t["abnormal"], "tier": case.tier,
            "lesions": lesions, "coordinates": "served pixels"}


def new_training_session(db: Session, study: Study, user: User) -> int:
    """Start a new training session: the next answer opens session n+1."""
    n = current_session_no(db, study, user)
    done = db.scalar(select(func.count()).select_from(Answer).where(
        Answer.study_id == study.id, Answer.user_id == user.id, Answer.session_no == n))
    return n + 1 if done else n


def training_history(db: Session, user: User) -> list[dict]:
    rows = db.execute(
        select(Study.name, Study.id, Answer.session_no, func.count(), func.avg(Answer.score),
               func.min(Answer.created_at), func.max(Answer.created_at))
        .join(Study, Study.id == Answer.study_id)
        .where(Answer.user_id == user.id, Study.kind == "training")
        .group_by(Study.name, Study.id, Answer.session_no).order_by(Study.id, Answer.session_no)).all()
    return [{"study": r[0], "study_id": r[1], "session": r[2], "cases": r[3],
             "score": round(100 * float(r[4] or 0), 1), "started": r[5], "last": r[6]} for r in rows]
