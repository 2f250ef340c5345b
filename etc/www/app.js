// kakao-login sample page: the Kakao code flow with PKCE, our access token
// in memory only, the refresh token in an HttpOnly cookie the service sets
// (refresh_cookie = yes), and the older pasted-token login. Plain
// JavaScript, no build step, no library.
//
//   1. "Log in with Kakao": a random state and PKCE verifier go to
//      sessionStorage (until the callback only), the browser to Kakao's
//      /oauth/authorize with the S256 challenge.
//   2. Kakao sends the browser back here with ?code=&state= (or
//      ?error=access_denied): the state is checked, the code and verifier
//      are posted to /users/kakao/callback, which answers our access token
//      and sets the refresh cookie.
//   3. The user comes from /users/me; the access token is refreshed through
//      the cookie before it expires and when the page loads (a reload stays
//      logged in); "Log out" posts /users/logout, which clears the cookie.
//
// ?strict=1 posts the code twice at once, as React StrictMode's double
// effect does; the service answers both with the same user.
(function () {
  "use strict";

  var cfg = window.KAKAO_LOGIN_CONFIG || {};
  var API = (cfg.api_base || "").replace(/\/+$/, "");
  var PENDING = "kakao_login_pending";   // sessionStorage: state + verifier, until the callback
  var HINT = "kakao_login_session";      // localStorage: "1" while a session may exist (no token)

  // Our access token lives here and nowhere else.
  var session = { token: null, expiresAt: 0, timer: null };

  var $ = function (id) { return document.getElementById(id); };

  // ------------------------------------------------------------ messages

  // What an error code means, for people (English / Korean).
  var SENTENCES = {
    INVALID_CODE: "The login code is invalid, expired or already used: log in again. / 로그인 코드가 잘못되었거나 만료되었거나 이미 사용되었습니다. 다시 로그인하세요.",
    REDIRECT_URI_MISMATCH: "This page's address is not one of the service's redirect_uris. / 이 페이지 주소가 서비스의 redirect_uris에 없습니다.",
    INVALID_TOKEN: "The Kakao access token is missing or malformed. / 카카오 액세스 토큰이 없거나 형식이 잘못되었습니다.",
    NOT_FOUND_IN_KAKAO: "Kakao does not know this token (invalid or expired). / 카카오가 이 토큰을 알지 못합니다(잘못되었거나 만료됨).",
    WRONG_APP: "This token was issued to another Kakao app. / 이 토큰은 다른 카카오 앱에 발급되었습니다.",
    USER_DEACTIVATED: "This account has been deactivated. / 비활성화된 계정입니다.",
    INVALID_ID_TOKEN: "Kakao's id_token did not pass the checks. / 카카오 id_token 검증에 실패했습니다.",
    INVALID_REFRESH_TOKEN: "Your session has ended: log in again. / 세션이 끝났습니다. 다시 로그인하세요.",
    REFRESH_REUSED: "Your session was ended for safety (an old refresh token was reused): log in again. / 보안을 위해 세션이 종료되었습니다(이전 리프레시 토큰 재사용). 다시 로그인하세요.",
    ORIGIN_NOT_ALLOWED: "This page's origin is not in the service's allowed_origins. / 이 페이지의 출처가 서비스의 allowed_origins에 없습니다.",
    NOT_CONFIGURED: "The service is not configured for this kind of login. / 서비스에 이 로그인 방식이 설정되어 있지 않습니다.",
    KAKAO_CONFIG_ERROR: "Kakao refused the app's settings (key, secret or redirect URI). / 카카오가 앱 설정(키, 시크릿, 리다이렉트 URI)을 거부했습니다.",
    KAKAO_UNAVAILABLE: "Kakao cannot be reached right now: try again later. / 지금 카카오에 연결할 수 없습니다. 잠시 후 다시 시도하세요.",
    KAKAO_TIMEOUT: "Kakao took too long to answer: try again. / 카카오 응답이 너무 늦습니다. 다시 시도하세요.",
    KAKAO_BUSY: "The service is busy: try again in a moment. / 서비스가 바쁩니다. 잠시 후 다시 시도하세요.",
    KAKAO_BAD_RESPONSE: "Kakao answered something unusable. / 카카오가 사용할 수 없는 응답을 보냈습니다.",
    TOO_MANY_REQUESTS: "Too many requests: wait a second and try again. / 요청이 너무 많습니다. 잠시 후 다시 시도하세요.",
    BAD_REQUEST: "The service could not read the request. / 서비스가 요청을 읽을 수 없습니다.",
    TOO_LARGE: "The request is too large. / 요청이 너무 큽니다.",
    NOT_FOUND: "The service has no such route (check api_base). / 서비스에 그런 경로가 없습니다(api_base 확인).",
    METHOD_NOT_ALLOWED: "The service does not take this method here. / 이 경로는 이 메서드를 받지 않습니다.",
    INTERNAL_ERROR: "The service failed inside: try again later. / 서비스 내부 오류입니다. 잠시 후 다시 시도하세요.",
    NETWORK_ERROR: "The service cannot be reached (network error). / 서비스에 연결할 수 없습니다(네트워크 오류).",
    BAD_RESPONSE: "The service answered something that is not our JSON. / 서비스가 알 수 없는 응답을 보냈습니다.",
    STATE_MISMATCH: "state mismatch / 상태 값이 맞지 않습니다: this answer does not belong to a login started here; nothing was sent. Log in again. / 이 페이지에서 시작한 로그인이 아니므로 아무것도 보내지 않았습니다. 다시 로그인하세요.",
    ACCESS_DENIED: "you declined / 로그인을 취소했습니다: you did not allow the login at Kakao. / 카카오에서 로그인을 허용하지 않았습니다.",
    KAKAO_ERROR: "Kakao refused the login. / 카카오가 로그인을 거부했습니다.",
    NO_WEBCRYPTO: "This browser cannot make a PKCE challenge here (WebCrypto needs https or localhost). / 이 브라우저는 여기서 PKCE를 만들 수 없습니다(https 또는 localhost 필요)."
  };

  // An error as the page shows it: status, code, sentence.
  function ApiError(status, code, detail) {
    this.status = status;
    this.code = code;
    this.detail = detail || "";
  }
  ApiError.prototype.toString = function () {
    var head = (this.status ? "HTTP " + this.status + " " : "") + this.code;
    var s = SENTENCES[this.code] ||
      "The service refused the request. / 서비스가 요청을 거부했습니다.";
    return head + ": " + s + (this.detail ? "\n(" + this.detail + ")" : "");
  };

  function show(kind, text) {
    var m = $("message");
    m.className = "message " + kind;
    m.textContent = text;       // never innerHTML: text from the URL or the API
    m.hidden = false;
  }
  function showError(e) {
    if (!(e instanceof ApiError)) {
      // A bug of ours: say so plainly, no stack trace on the page.
      if (window.console) console.warn("kakao-login sample:", e);
      e = new ApiError(0, "PAGE_ERROR", String(e && e.message || e));
    }
    show("error", String(e));
  }
  function clearMessage() { $("message").hidden = true; $("message").textContent = ""; }
  function status(text) { $("status").textContent = text; }

  // ------------------------------------------------------------ the API

  // POST/GET to the service: resolves to the JSON answer, rejects with an
  // ApiError. credentials "include": the refresh cookie goes along and the
  // Set-Cookie is taken, also when api_base is another (allowed) origin.
  function api(method, path, opts) {
    opts = opts || {};
    var headers = {};
    if (opts.token) headers.Authorization = "Bearer " + opts.token;
    var init = { method: method, headers: headers, credentials: "include", cache: "no-store" };
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    }
    return fetch(API + path, init).then(function (r) {
      return r.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        if (r.ok && body && body.message === "SUCCESS") return body;
        if (body && typeof body.message === "string")
          throw new ApiError(r.status, body.message);
        throw new ApiError(r.status, "BAD_RESPONSE");
      });
    }, function (e) {
      throw new ApiError(0, "NETWORK_ERROR", String(e && e.message || e));
    });
  }

  // ------------------------------------------------------------ PKCE, state

  function b64url(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function random(n) {
    var b = new Uint8Array(n);
    crypto.getRandomValues(b);
    return b64url(b);
  }
  function s256(verifier) {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))
      .then(function (d) { return b64url(new Uint8Array(d)); });
  }

  // ------------------------------------------------------------ session

  function setToken(answer) {
    session.token = answer.access_token;
    var ttl = Number(answer.expires_in) || 3600;
    session.expiresAt = Date.now() + ttl * 1000;
    try { localStorage.setItem(HINT, "1"); } catch (e) { /* private mode */ }
    // Refresh a minute before expiry (a fifth of the lifetime when short).
    var lead = Math.min(60, ttl / 5);
    clearTimeout(session.timer);
    session.timer = setTimeout(function () {
      refresh().catch(function (e) { loggedOut(); showError(e); });
    }, Math.max(1, ttl - lead) * 1000);
    $("expiry").textContent = new Date(session.expiresAt).toLocaleString();
  }

  function forget() {
    clearTimeout(session.timer);
    session.token = null;
    session.expiresAt = 0;
    try { localStorage.removeItem(HINT); } catch (e) { /* private mode */ }
  }

  // The cookie's refresh: no body field, the cookie carries the token.
  function refresh() {
    return api("POST", "/users/token/refresh", { json: {} }).then(setToken);
  }

  function showUser() {
    return api("GET", "/users/me", { token: session.token }).then(function (a) {
      var u = a.user || {};
      var nick = u.nickname || ("#" + u.id);
      $("nickname").textContent = nick;
      $("nickname-ko").textContent = nick;
      $("user-id").textContent = String(u.id);
      $("kakao-id").textContent = String(u.kakao_id);
      $("email").textContent = u.email || "—";
      $("login-count").textContent = u.login_count != null ? String(u.login_count) : "—";
      var img = $("avatar");
      if (cfg.show_profile_image !== false && typeof u.profile_image === "string" &&
          /^https?:\/\//.test(u.profile_image)) {
        img.src = u.profile_image;
        img.hidden = false;
      } else {
        img.hidden = true;
        img.removeAttribute("src");
      }
      document.body.dataset.state = "logged-in";
      $("view-out").hidden = true;
      $("view-in").hidden = false;
      status("Logged in / 로그인됨");
    });
  }

  function loggedOut() {
    forget();
    document.body.dataset.state = "logged-out";
    $("view-in").hidden = true;
    $("view-out").hidden = false;
    status("Not logged in / 로그인하지 않음");
  }

  // A login answer (any route): keep the token, show the user.
  function loggedIn(answer) {
    setToken(answer);
    return showUser();
  }

  function busy(on) {
    ["login", "token-login", "refresh", "logout"].forEach(function (id) { $(id).disabled = on; });
    if (on) document.body.dataset.state = "loading";
  }

  // ------------------------------------------------------------ the flows

  function startLogin() {
    clearMessage();
    if (!window.crypto || !crypto.subtle) { showError(new ApiError(0, "NO_WEBCRYPTO")); return; }
    var pending = {
      state: random(16),
      verifier: random(32),           // 43 characters
      nonce: cfg.openid ? random(16) : null,
      strict: new URLSearchParams(location.search).get("strict") === "1"
    };
    s256(pending.verifier).then(function (challenge) {
      sessionStorage.setItem(PENDING, JSON.stringify(pending));
      var q = new URLSearchParams({
        client_id: cfg.client_id,
        redirect_uri: cfg.redirect_uri,
        response_type: "code",
        state: pending.state,
        code_challenge: challenge,
        code_challenge_method: "S256"
      });
      if (pending.nonce) { q.set("scope", "openid"); q.set("nonce", pending.nonce); }
      location.assign(cfg.kakao_auth_url.replace(/\/+$/, "") + "/oauth/authorize?" + q.toString());
    }).catch(showError);
  }

  // Back from Kakao with ?code= or ?error=. Resolves when done (logged in,
  // or a message shown).
  function callback(params) {
    var pending = null;
    try { pending = JSON.parse(sessionStorage.getItem(PENDING) || "null"); } catch (e) { pending = null; }
    sessionStorage.removeItem(PENDING);     // one use, whatever happens
    // The code and state leave the address bar (and the history).
    var clean = new URL(location.href);
    ["code", "state", "error", "error_description", "error_code"].forEach(function (k) {
      clean.searchParams.delete(k);
    });
    if (pending && pending.strict) clean.searchParams.set("strict", "1");
    history.replaceState(null, "", clean.pathname + clean.search + clean.hash);

    if (!pending || !pending.state || params.get("state") !== pending.state)
      return Promise.reject(new ApiError(0, "STATE_MISMATCH"));
    var err = params.get("error");
    if (err === "access_denied") return Promise.reject(new ApiError(0, "ACCESS_DENIED"));
    if (err) return Promise.reject(new ApiError(0, "KAKAO_ERROR",
      err + (params.get("error_description") ? ": " + params.get("error_description") : "")));
    var code = params.get("code");
    if (!code) return Promise.reject(new ApiError(0, "KAKAO_ERROR", "no code in Kakao's answer"));

    var body = { code: code, redirect_uri: cfg.redirect_uri, code_verifier: pending.verifier };
    if (pending.nonce) body.nonce = pending.nonce;
    var post = function () { return api("POST", "/users/kakao/callback", { json: body }); };
    status("Logging in… / 로그인 중…");
    if (!pending.strict && new URLSearchParams(location.search).get("strict") !== "1")
      return post().then(loggedIn);
    // StrictMode's double submit: the same code twice, at once. One success
    // is a login; the other answer's error, if any, is not shown.
    return Promise.all([post().then(ok, ko), post().then(ok, ko)]).then(function (rs) {
      var good = rs.filter(function (r) { return r.ok; });
      if (good.length === 0) throw rs[0].error;
      document.body.dataset.strictSuccesses = String(good.length);
      return loggedIn(good[good.length - 1].answer);
    });
    function ok(a) { return { ok: true, answer: a }; }
    function ko(e) { return { ok: false, error: e }; }
  }

  function tokenLogin(ev) {
    ev.preventDefault();
    clearMessage();
    var t = $("kakao-token").value.trim();
    if (!t) { showError(new ApiError(0, "INVALID_TOKEN")); return; }
    busy(true);
    api("POST", "/users/kakao/login", { token: t }).then(function (a) {
      $("kakao-token").value = "";
      return loggedIn(a);
    }).catch(function (e) { loggedOut(); showError(e); }).then(function () { busy(false); });
  }

  function logout() {
    clearMessage();
    busy(true);
    var t = session.token;
    forget();
    api("POST", "/users/logout", { token: t }).then(function () {
      loggedOut();
      show("info", "Logged out / 로그아웃했습니다");
    }, function (e) {
      loggedOut();          // logged out here whatever the service said
      showError(e);
    }).then(function () { busy(false); });
  }

  function refreshNow() {
    clearMessage();
    busy(true);
    refresh().then(showUser).catch(function (e) { loggedOut(); showError(e); })
      .then(function () { busy(false); });
  }

  // ------------------------------------------------------------ start

  function start() {
    $("login").addEventListener("click", startLogin);
    $("token-form").addEventListener("submit", tokenLogin);
    $("logout").addEventListener("click", logout);
    $("refresh").addEventListener("click", refreshNow);

    var params = new URLSearchParams(location.search);
    var first;
    if (params.has("code") || params.has("error")) {
      first = callback(params);
    } else if (localStorage.getItem(HINT) === "1") {
      // A reload: the cookie may still hold a session.
      status("Restoring the session… / 세션 복원 중…");
      first = refresh().then(showUser).catch(function (e) {
        // No session any more is no error worth a message on load.
        if (e instanceof ApiError && (e.code === "INVALID_REFRESH_TOKEN" ||
            e.code === "REFRESH_REUSED")) return loggedOut();
        throw e;
      });
    } else {
      first = Promise.resolve().then(loggedOut);
    }
    busy(true);
    first.catch(function (e) { loggedOut(); showError(e); })
      .then(function () { busy(false); if (!session.token) loggedOut(); });
  }

  // Two tabs: a logout in one ends the other's view at its next refresh;
  // a login in one (the hint appears) shows in the other at once.
  window.addEventListener("storage", function (ev) {
    if (ev.key === HINT && ev.newValue === "1" && !session.token)
      refresh().then(showUser).catch(function () { /* stay logged out */ });
  });

  start();
})();
