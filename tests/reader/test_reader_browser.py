"""Browser test (Playwright driving Debian's headless chromium): an admin creates a study,
two readers complete it, the analysis appears. Also a detection case with marks and a
training feedback page; screenshots go to $MAMMOSYNTH_SCREENSHOTS (or the test's tmp dir).
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("MAMMOSYNTH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def big_phantoms(tmp_path_factory):
    from mammosynth.phantom import PhantomConfig, make_phantom_dataset

    h, w = (int(v) for v in os.environ.get("MAMMOSYNTH_SCREENSHOT_SIZE", "128x80").split("x"))
    root = tmp_path_factory.mktemp("bphantoms")
    cfg = dict(size=(h, w), findings="mass:0.5")
    return (make_phantom_dataset(root / "real", 8, PhantomConfig(seed=5, **cfg), workers=1),
            make_phantom_dataset(root / "synth", 8, PhantomConfig(seed=6, **cfg), workers=1))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from mammosynth.reader import service
    from mammosynth.reader.app import create_app

    db = tmp_path_factory.mktemp("bdb") / "reader.db"
    app = create_app(f"sqlite:///{db}")
    with app.state.sessionmaker.begin() as s:
        service.create_user(s, "admin", "admin-pass-1", "admin")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path):
    d = Path(os.environ.get("MAMMOSYNTH_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def login(browser, base, user, pw, **ctx):
    page = browser.new_context(viewport={"width": 1920, "height": 1080}, **ctx).new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", pw)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    page.errors = errors
    return page


def click_to(page, selector):
    """Click something that loads a new page and wait for it ("load"): reading the page
    before that can see a document that is still loading (an empty string, seen once in CI)."""
    with page.expect_navigation():
        page.click(selector)


def create_account(admin, name, role):
    admin.fill("#new-user input[name=username]", name)
    admin.fill("#new-user input[name=password]", name + "-pass-1")
    admin.select_option("#new-user select[name=role]", role)
    click_to(admin, "#new-user button[type=submit]")  # posts, then redirects back


def create_study(admin, base, name, kind, sources, readers):
    admin.goto(base + "/")
    admin.fill("#new-study input[name=name]", name)
    admin.select_option("#new-study select[name=kind]", kind)
    admin.fill("#new-study textarea[name=sources]", sources)
    for r in readers:
        admin.check(f"#new-study input[name=readers][value={r}]")
    admin.click("#new-study button[type=submit]")
    admin.wait_for_url("**/results")
    return admin.url.rsplit("/", 1)[0]


def read_study(page, base, rating_keys, shot=None):
    page.goto(base + "/")
    click_to(page, "text=Start")
    n = 0
    while page.locator("#reader").count():
        page.wait_for_selector("body[data-loaded='1']")
        if shot and n == 0:
            page.keyboard.press("+")
            page.screenshot(path=str(shot))
        page.keyboard.press(rating_keys[n % len(rating_keys)])
        with page.expect_navigation():
            page.keyboard.press("Enter")
        n += 1
        assert n < 50
    assert "cases read" in page.content()
    return n


def test_admin_creates_study_two_readers_complete_it_analysis_appears(server, browser, big_phantoms, shots):
    base = server
    real, synth = big_phantoms
    admin = login(browser, base, "admin", "admin-pass-1")
    for name in ("alice", "bob"):
        create_account(admin, name, "reader")
    assert "alice — reader" in admin.content()
    study_url = create_study(admin, base, "Real or synthetic?", "realsynth",
                             f"4 {real} as real\n4 {synth} as synthetic", ["alice", "bob"])
    admin.screenshot(path=str(shots / "admin.png"))
    alice = login(browser, base, "alice", "alice-pass-1")
    assert read_study(alice, base, ["1", "2", "4", "5"], shots / "realsynth.png") == 8
    bob = login(browser, base, "bob", "bob-pass-1", has_touch=True)  # a tablet-like context
    bob.set_viewport_size({"width": 1024, "height": 768})
    assert read_study(bob, base, ["3", "5"], shots / "tablet.png") == 8
    admin.goto(study_url + "/results")
    text = admin.inner_text("main")
    assert "alice" in text and "bob" in text and "Pooled (random readers and cases" in text
    assert "16 answers" in text
    admin.screenshot(path=str(shots / "results.png"), full_page=True)
    assert not (alice.errors + bob.errors + admin.errors)


def test_detection_marks_and_training_feedback(server, browser, big_phantoms, shots):
    base = server
    real, synth = big_phantoms
    admin = login(browser, base, "admin", "admin-pass-1")
    create_account(admin, "carol", "reader")
    create_account(admin, "tom", "trainee")
    create_study(admin, base, "Find the masses", "detection", f"3 {real}\n3 {synth}", ["carol"])
    create_study(admin, base, "Training", "training", f"3 {real}", ["tom"])
    carol = login(browser, base, "carol", "carol-pass-1")
    click_to(carol, "text=Start")
    carol.wait_for_selector("body[data-loaded='1']")
    canvas = carol.locator("canvas.img").first
    box = canvas.bounding_box()
    carol.keyboard.press("4")  # confidence of the next mark
    canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    carol.keyboard.press("b")  # box mode: drag a box
    carol.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    carol.mouse.down()
    carol.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5, steps=5)
    carol.mouse.up()
    assert carol.inner_text("#markcount") == "2 marks"
    carol.screenshot(path=str(shots / "detection.png"))
    with carol.expect_navigation():
        carol.keyboard.press("Enter")
    assert "case 2 of" in carol.content()
    tom = login(browser, base, "tom", "tom-pass-1")
    click_to(tom, "text=continue")
    tom.wait_for_selector("body[data-loaded='1']")
    c = tom.locator("canvas.img").first
    b = c.bounding_box()
    c.click(position={"x": b["width"] / 2, "y": b["height"] / 2})
    tom.keyboard.press("Enter")
    tom.wait_for_url("**/feedback/**")
    tom.wait_for_selector("body[data-loaded='1']")
    assert "This case:" in tom.content()
    tom.screenshot(path=str(shots / "training.png"))
    tom.goto(base + "/")
    assert "Training" in tom.inner_text("#history")
    assert not (carol.errors + tom.errors)
