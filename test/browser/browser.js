// The sample page (etc/www) in Debian's chromium, headless, driven by
// playwright-core: every flow a person clicks through, against the stack
// test/browser/run.py starts (fake Kakao, the service, nginx).
//
//   node browser.js <base-url> <outdir>
//
// Prints "ok - ..." / "not ok - ..." per check and saves a screenshot of
// every step in outdir (01-logged-out.png, 02-authorize.png, ...). Exit
// status 1 when a check failed. CHROMIUM: the browser (/usr/bin/chromium);
// COOKIE_SECURE=1: the service's refresh cookie is the Secure
// __Host-kl_refresh (refresh_cookie_secure = yes), else kl_refresh.
"use strict";

const path = require("path");
const { chromium, request: pwRequest } = require("playwright-core");

const [base, outdir] = process.argv.slice(2);
if (!base || !outdir) {
  console.error("usage: node browser.js <base-url> <outdir>");
  process.exit(2);
}
const origin = new URL(base).origin;
const secure = process.env.COOKIE_SECURE === "1";
const COOKIE = secure ? "__Host-kl_refresh" : "kl_refresh";
const COOKIE_PATHS = ["/"];

let failed = 0;
let shot = 0;
const MODE = secure ? "" : " [refresh_cookie_secure = no]";
function ok(cond, what, detail) {
  what += MODE;
  if (cond) console.log("ok - " + what);
  else {
    failed++;
    console.log("not ok - " + what + (detail !== undefined ? ": " + detail : ""));
  }
  return cond;
}

async function screenshot(page, name) {
  shot++;
  const file = String(shot).padStart(2, "0") + "-" + name + ".png";
  await page.screenshot({ path: path.join(outdir, file), fullPage: true });
  console.log("# screenshot " + file);
}

// Every page's uncaught errors and console errors. allow: a RegExp of the
// console errors a step expects (a 401 it provokes on purpose), or null.
const problems = [];
let allow = null;
function watch(page, name) {
  page.on("pageerror", (e) => problems.push(name + ": uncaught " + e.message));
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const text = m.text();
    if (allow && allow.test(text)) return;
    if (m.type() === "warning" && !/kakao-login sample|Refused|Content.Security.Policy/i.test(text)) return;
    problems.push(name + ": console " + m.type() + " " + text);
  });
  page.on("response", (r) => {
    if (r.status() >= 500) problems.push(name + ": " + r.status() + " " + r.url());
    else if (r.status() >= 400) console.log("# " + name + ": " + r.status() + " " + r.url());
  });
  page.setDefaultTimeout(15000);
  return page;
}

// The page's state, as app.js keeps it on <body data-state>.
async function waitState(page, state) {
  await page.waitForFunction((s) => document.body.dataset.state === s &&
    !document.getElementById("login").disabled, state);
}

async function message(page) {
  return page.evaluate(() => {
    const m = document.getElementById("message");
    return m.hidden ? "" : m.textContent;
  });
}

// The token must be nowhere script-visible storage can keep it.
async function checkNoToken(page, token, when) {
  const seen = await page.evaluate((t) => {
    const where = [];
    for (const s of [["localStorage", localStorage], ["sessionStorage", sessionStorage]])
      for (let i = 0; i < s[1].length; i++) {
        const k = s[1].key(i);
        if (k.includes(t) || (s[1].getItem(k) || "").includes(t)) where.push(s[0]);
      }
    if (document.cookie.includes(t)) where.push("document.cookie");
    if (document.cookie.includes("kl_refresh")) where.push("refresh cookie readable");
    return where;
  }, token);
  ok(token && seen.length === 0,
    "the access token is in no storage, document.cookie shows no refresh cookie (" + when + ")",
    seen.join(", ") || "no token");
}

async function refreshCookies(context) {
  return (await context.cookies()).filter((c) => c.name === COOKIE);
}

async function checkCookies(context, when) {
  const cs = await refreshCookies(context);
  const paths = cs.map((c) => c.path).sort();
  ok(JSON.stringify(paths) === JSON.stringify(COOKIE_PATHS) &&
    cs.every((c) => c.httpOnly && c.sameSite === "Strict" && c.secure === secure &&
      c.value.length >= 43 && c.expires > Date.now() / 1000),
    "the refresh cookie " + COOKIE + " is HttpOnly, SameSite=Strict" +
    (secure ? ", Secure" : "") + ", on " + COOKIE_PATHS.join(" and ") + " (" + when + ")",
    JSON.stringify(cs.map((c) => ({ path: c.path, httpOnly: c.httpOnly, sameSite: c.sameSite,
      secure: c.secure, expires: c.expires }))));
  return cs.length ? cs[0].value : null;
}

// The answer of the next POST to route on page, as {status, body, headers}.
function nextAnswer(page, route) {
  return page.waitForResponse((r) => r.url() === origin + route &&
    r.request().method() === "POST").then(async (r) => {
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status(), body, headers: await r.allHeaders() };
  });
}

// Log in through the fake's consent page as test user id; returns the
// /users/kakao/callback answer.
async function codeLogin(page, id, shots) {
  await page.click("#login");
  await page.waitForURL(/\/oauth\/authorize\?/);
  if (shots) await screenshot(page, shots);
  const answer = nextAnswer(page, "/users/kakao/callback");
  await page.click("#user-" + id);
  const a = await answer;
  await waitState(page, "logged-in");
  return a;
}

async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    ok(false, name, String(e && e.message || e).split("\n")[0]);
  }
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 720, height: 900 }, locale: "ko-KR" });
  const page = watch(await context.newPage(), "tab 1");
  let token = null;

  await step("the code flow logs in", async () => {
    await page.goto(base);
    await waitState(page, "logged-out");
    ok(/Log in with Kakao/.test(await page.textContent("#login")) &&
      /카카오 로그인/.test(await page.textContent("#login")),
      "logged out at first: the \"Log in with Kakao / 카카오 로그인\" button shows");
    const look = await page.evaluate(() => ({
      button: getComputedStyle(document.getElementById("login")).backgroundColor,
      types: performance.getEntriesByType("resource").map((e) => e.name),
    }));
    ok(look.button === "rgb(254, 229, 0)", "style.css applies (the Kakao-yellow button)",
      JSON.stringify(look));
    await screenshot(page, "logged-out");

    await page.click("#login");
    await page.waitForURL(/\/oauth\/authorize\?/);
    const q = new URL(page.url()).searchParams;
    ok(q.get("client_id") === "fake-rest-api-key" && q.get("redirect_uri") === base &&
      q.get("response_type") === "code" && /^[A-Za-z0-9_-]{22,}$/.test(q.get("state") || "") &&
      /^[A-Za-z0-9_-]{43}$/.test(q.get("code_challenge") || "") &&
      q.get("code_challenge_method") === "S256",
      "the button sends the browser to /oauth/authorize with client_id, redirect_uri, " +
      "response_type=code, a random state and an S256 code_challenge", page.url());
    ok(await page.isVisible("#user-1001") && await page.isVisible("#deny"),
      "the fake Kakao's consent page lists the test users and a deny button");
    await screenshot(page, "authorize");

    const answer = nextAnswer(page, "/users/kakao/callback");
    await page.click("#user-1001");
    const a = await answer;
    ok(a.status === 200 && a.body && a.body.message === "SUCCESS" && a.body.access_token &&
      !("refresh_token" in a.body) && a.body.expires_in > 0,
      "POST /users/kakao/callback answers 200 with our access token and no refresh_token " +
      "in the body (cookie mode)", JSON.stringify({ status: a.status, body: a.body }));
    token = a.body && a.body.access_token;
    await waitState(page, "logged-in");
    ok(await page.textContent("#nickname") === "user1001",
      "back on the page: the nickname user1001 from /users/me shows",
      await page.textContent("#nickname"));
    ok(page.url() === base, "the code and state are gone from the address bar", page.url());
    ok(await message(page) === "", "no error message after the login", await message(page));
    await screenshot(page, "logged-in");
    await checkNoToken(page, token, "after the code flow");
    await checkCookies(context, "after the code flow");
    ok(await page.evaluate(() => sessionStorage.length) === 0,
      "the state and PKCE verifier left sessionStorage after the callback");
  });

  await step("a reload stays logged in", async () => {
    const answer = nextAnswer(page, "/users/token/refresh");
    await page.reload();
    const a = await answer;
    await waitState(page, "logged-in");
    ok(a.status === 200 && a.body.access_token && a.body.access_token !== token &&
      !("refresh_token" in a.body),
      "a reload refreshes through the cookie (200, a new access token, none in the body)",
      JSON.stringify({ status: a.status, body: a.body }));
    token = a.body.access_token;
    ok(await page.textContent("#nickname") === "user1001", "after the reload: still user1001");
    await screenshot(page, "reloaded");
    await checkNoToken(page, token, "after the reload");
    await checkCookies(context, "after the rotation");
  });

  await step("two tabs refreshing at once", async () => {
    const page2 = watch(await context.newPage(), "tab 2");
    await page2.goto(base);
    await waitState(page2, "logged-in");
    ok(await page2.textContent("#nickname") === "user1001", "a second tab opens logged in");
    // Both at once: two reloads, then both "Refresh now" buttons.
    const rs = [nextAnswer(page, "/users/token/refresh"), nextAnswer(page2, "/users/token/refresh")];
    await Promise.all([page.reload(), page2.reload()]);
    let as = await Promise.all(rs);
    await Promise.all([waitState(page, "logged-in"), waitState(page2, "logged-in")]);
    ok(as.every((a) => a.status === 200),
      "two tabs reloading at once: both refreshes of the one cookie answer 200",
      as.map((a) => a.status + " " + JSON.stringify(a.body)).join("; "));
    const rs2 = [nextAnswer(page, "/users/token/refresh"), nextAnswer(page2, "/users/token/refresh")];
    await Promise.all([page.click("#refresh"), page2.click("#refresh")]);
    as = await Promise.all(rs2);
    await Promise.all([waitState(page, "logged-in"), waitState(page2, "logged-in")]);
    ok(as.every((a) => a.status === 200),
      "both tabs' \"Refresh now\" at once: both 200",
      as.map((a) => a.status + " " + JSON.stringify(a.body)).join("; "));
    ok(await page.textContent("#nickname") === "user1001" &&
      await page2.textContent("#nickname") === "user1001" &&
      await message(page) === "" && await message(page2) === "",
      "both tabs stay logged in, no error shown");
    token = as[0].body.access_token;
    await screenshot(page, "two-tabs-first");
    await screenshot(page2, "two-tabs-second");
    await page2.close();
    // The cookie the jar kept still refreshes.
    const answer = nextAnswer(page, "/users/token/refresh");
    await page.reload();
    const a = await answer;
    await waitState(page, "logged-in");
    ok(a.status === 200, "after the two tabs, a reload still refreshes (200)", String(a.status));
    token = a.body.access_token;
  });

  await step("logout", async () => {
    const before = await refreshCookies(context);
    const answer = nextAnswer(page, "/users/logout");
    await page.click("#logout");
    const a = await answer;
    await waitState(page, "logged-out");
    ok(a.status === 200 && a.body.message === "SUCCESS", "POST /users/logout answers 200 SUCCESS",
      JSON.stringify(a));
    ok(/Logged out/.test(await message(page)) && await page.isVisible("#login"),
      "after logout: the logged-out view", await message(page));
    ok((await refreshCookies(context)).length === 0, "logout cleared the refresh cookie",
      JSON.stringify(await refreshCookies(context)));
    await screenshot(page, "logged-out-after-logout");
    // The session is revoked at the service, not only forgotten here.
    if (before.length) {
      const rq = await pwRequest.newContext();
      const r = await rq.post(origin + "/users/token/refresh", {
        headers: { Origin: origin, Cookie: COOKIE + "=" + before[0].value,
          "Content-Type": "application/json" }, data: "{}" });
      ok(r.status() === 401, "the logged-out cookie no longer refreshes (401)",
        r.status() + " " + await r.text());
      await rq.dispose();
    }
    let refreshed = false;
    const seen = (r) => { if (r.url().endsWith("/users/token/refresh")) refreshed = true; };
    page.on("request", seen);
    await page.reload();
    await waitState(page, "logged-out");
    await page.waitForTimeout(300);
    page.off("request", seen);
    ok(await page.isVisible("#login") && !(await page.isVisible("#view-in")) &&
      await message(page) === "",
      "a reload after logout stays logged out, with no error", await message(page));
    ok(!refreshed, "after logout the page does not even try a refresh");
    await screenshot(page, "reload-after-logout");
  });

  await step("state mismatch", async () => {
    await page.click("#login");
    await page.waitForURL(/\/oauth\/authorize\?/);
    await page.evaluate(() => { document.querySelector("input[name=state]").value = "forged-state"; });
    let posted = false;
    const seen = (r) => { if (r.url().endsWith("/users/kakao/callback")) posted = true; };
    page.on("request", seen);
    await page.click("#user-1002");
    await page.waitForURL(base);
    await waitState(page, "logged-out");
    page.off("request", seen);
    const m = await message(page);
    ok(/state mismatch/.test(m) && /상태 값이 맞지 않습니다/.test(m),
      "a state that is not ours shows \"state mismatch / 상태 값이 맞지 않습니다\"", m);
    ok(!posted, "with a state mismatch the code is not posted");
    await screenshot(page, "state-mismatch");
    // A forged callback link, no login started in this tab.
    await page.goto(base + "?code=good-1002.uforged1&state=abc");
    await waitState(page, "logged-out");
    ok(/state mismatch/.test(await message(page)) && page.url() === base,
      "a callback link with no login started here: state mismatch, the URL cleaned",
      await message(page) + " " + page.url());
  });

  await step("denied consent", async () => {
    await page.goto(base);
    await waitState(page, "logged-out");
    await page.click("#login");
    await page.waitForURL(/\/oauth\/authorize\?/);
    await screenshot(page, "authorize-before-deny");
    await page.click("#deny");
    await page.waitForURL(base);
    await waitState(page, "logged-out");
    const m = await message(page);
    ok(/you declined/.test(m) && /로그인을 취소했습니다/.test(m),
      "denying at Kakao shows \"you declined / 로그인을 취소했습니다\"", m);
    ok(!/error=/.test(page.url()), "the error left the address bar", page.url());
    await screenshot(page, "denied");
  });

  await step("StrictMode double submit", async () => {
    await page.goto(base + "?strict=1");
    await waitState(page, "logged-out");
    const answers = [];
    const seen = (r) => {
      if (r.url() === origin + "/users/kakao/callback")
        answers.push(r.status());
    };
    page.on("response", seen);
    await codeLogin(page, 1002, "authorize-strict");
    await page.waitForTimeout(300);
    page.off("response", seen);
    ok(answers.length === 2, "?strict=1 posts the code twice at once", JSON.stringify(answers));
    ok(await page.textContent("#nickname") === "user1002" && await message(page) === "",
      "the double submit still logs in (user1002), no error shown",
      "answers " + JSON.stringify(answers) + " message " + await message(page));
    ok(answers.every((s) => s === 200), "both posts of the one code answer 200 (the service's claim)",
      JSON.stringify(answers));
    await screenshot(page, "strict-logged-in");
    await checkNoToken(page, "eyJ", "after the double submit (no JWT at all)");
    await checkCookies(context, "after the double submit");
    await page.click("#logout");
    await waitState(page, "logged-out");
  });

  await step("pasted Kakao token", async () => {
    await page.goto(base);
    await waitState(page, "logged-out");
    await page.fill("#kakao-token", "valid-1003");
    await screenshot(page, "token-pasted");
    const answer = nextAnswer(page, "/users/kakao/login");
    await page.click("#token-login");
    const a = await answer;
    await waitState(page, "logged-in");
    ok(a.status === 200 && a.body.access_token && !("refresh_token" in a.body),
      "a pasted Kakao token logs in through /users/kakao/login (no refresh_token in the body)",
      JSON.stringify({ status: a.status, body: a.body }));
    ok(await page.textContent("#nickname") === "user1003", "the pasted token's user user1003 shows");
    await screenshot(page, "token-logged-in");
    await checkNoToken(page, a.body.access_token, "after the token login");
    await checkCookies(context, "after the token login");
    await page.reload();
    await waitState(page, "logged-in");
    ok(await page.textContent("#nickname") === "user1003", "the token login survives a reload too");
    await page.click("#logout");
    await waitState(page, "logged-out");

    // A token Kakao refuses: a readable message, no stack trace.
    allow = /status of 401/;
    await page.fill("#kakao-token", "expired-1003");
    await page.click("#token-login");
    await page.waitForFunction(() => !document.getElementById("message").hidden);
    await waitState(page, "logged-out");
    allow = null;
    const m = await message(page);
    ok(/^HTTP 401 NOT_FOUND_IN_KAKAO: .*카카오/.test(m) && !/at .*\.js|Error:/.test(m),
      "a refused token shows status, code and a sentence (\"HTTP 401 NOT_FOUND_IN_KAKAO: ...\")", m);
    await screenshot(page, "token-refused");
  });

  // The timer, on a clock of its own: a context of its own (a context's
  // pages share one fake clock), logged in through the code flow.
  await step("the timer refreshes before expiry", async () => {
    const ctx2 = await browser.newContext({ viewport: { width: 720, height: 900 }, locale: "ko-KR" });
    await ctx2.clock.install();
    const p = watch(await ctx2.newPage(), "timer tab");
    await p.goto(base);
    await waitState(p, "logged-out");
    await codeLogin(p, 1003);
    const answer = nextAnswer(p, "/users/token/refresh");
    await ctx2.clock.fastForward(3600 * 1000 - 30 * 1000);
    const a = await answer;
    await waitState(p, "logged-in");
    ok(a.status === 200 && a.body.access_token && await p.textContent("#nickname") === "user1003",
      "before the access token expires (clock moved on 59.5 minutes), the page's timer " +
      "refreshes through the cookie and stays logged in", a.status + " " + JSON.stringify(a.body));
    await screenshot(p, "timer-refreshed");
    await ctx2.close();
  });

  await browser.close();
  ok(problems.length === 0, "no uncaught page errors, console errors or 5xx answers",
    problems.join(" | "));
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log("not ok - browser.js: " + String(e && e.stack || e).split("\n")[0]);
  process.exit(1);
});
