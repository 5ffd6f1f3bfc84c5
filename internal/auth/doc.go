// Package auth is liveclass's account system (the job Cognito does in the
// guide): users and roles, password hashing, sessions and bearer tokens,
// sign-up and sign-in over HTTP, login rate limiting, CSRF protection for
// cookie-authenticated requests, and the rules on who may read or change
// an account.
//
// # Sessions
//
// A sign-in makes a session token of 32 random bytes (base64url). The
// client gets it twice: in the JSON body, to send as
// `Authorization: Bearer <token>`, and in the HttpOnly cookie
// liveclass_session, for the browser. The store keeps only its SHA-256, so
// a copy of the database signs nobody in. Checking a token (Authenticate)
// is one hash and an indexed read, cheap enough for every request.
//
// # CSRF
//
// A browser attaches the cookie to requests that other sites make it send,
// so a cookie-authenticated POST, PUT, PATCH or DELETE must also carry
// CSRFToken(session) in the X-CSRF-Token header or the csrf_token form
// field. The token is an HMAC of the session token under the server key:
// no storage, the same on every node. Pages get it from
// CSRFTokenFromContext; scripts from the csrfToken field of the sign-in
// answer. Bearer requests need none, since a browser never adds an
// Authorization header on its own. /auth/login and /auth/signup take only
// application/json, which a cross-site form cannot send.
//
// # Passwords and sign-in limits
//
// Passwords are hashed with argon2id (DefaultHashParams, about 20 ms) and
// stored as PHC strings, so that the cost can be raised later and old
// hashes still verify. A wrong password and an unknown email give the same
// error in about the same time. Sign-in is limited per account (failures)
// and per client address (attempts), in memory and per process: with
// several nodes each enforces its own limit, which still caps guessing.
//
// # HTTP
//
//	POST /auth/signup {"email","password","name"} → 201, signs in (body as for login)
//	POST /auth/login  {"email","password"}        → 200 {"token","expiresAt","csrfToken","user"}
//	POST /auth/logout                              → 204, ends the session, clears the cookie
//
// Errors are {"error":{"code","message","field"}} with the status of the
// error's kind (see apperr), 413 for bodies over 64 KiB, 415 for bodies
// that are not JSON and 405 for other methods; a 429 carries Retry-After.
package auth
