// Package web owns monohook's dashboard: server-rendered pages (no build
// step, no CDN) that show the stored deliveries, the decision for every
// rule and what each pipeline start answered and how it ended, each
// pipeline's recent runs with an SVG chart drawn on the server, and the
// rules with a path tester; and the login that guards them (an admin token, then a session
// kept in the database behind a cookie, and a CSRF token on every form).
package web
