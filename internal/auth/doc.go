// Package auth is liveclass's account system (the job Cognito does in the
// guide): users and roles, password hashing, sessions and bearer tokens,
// sign-up and sign-in over HTTP, login rate limiting, CSRF protection for
// cookie-authenticated requests, and the rules on who may read or change
// an account.
package auth
