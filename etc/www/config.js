// kakao-login sample page: where things are. Edit for your deployment;
// `make run` and `make demo` serve a generated one at /config.js instead
// (pointing at the fake Kakao). Nothing secret belongs here: the REST API
// key is public (Kakao shows it in every authorize URL), the client secret
// stays in the service.
window.KAKAO_LOGIN_CONFIG = {
  // Kakao's authorization host; /oauth/authorize is appended.
  kakao_auth_url: "https://kauth.kakao.com",
  // Your app's REST API key (the service's kakao_rest_api_key).
  client_id: "YOUR_REST_API_KEY",
  // This page's URL, registered at Kakao and in the service's redirect_uris
  // byte for byte.
  redirect_uri: window.location.origin + "/",
  // Where the service answers: "" for the same origin as this page, else
  // e.g. "https://api.example.com" (then in the service's allowed_origins).
  api_base: "",
  // OpenID Connect: scope=openid and a nonce the service checks in the
  // id_token (turn OpenID Connect on in Kakao's console first).
  openid: false,
  // Show the Kakao profile image (an http(s) URL from Kakao's CDN).
  show_profile_image: true
};
