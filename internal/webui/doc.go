// Package webui is Warren's browser interface: a few static files (HTML,
// CSS, plain JavaScript, no build step and nothing fetched from elsewhere)
// embedded in the binary and served by Handler.
//
// The page talks only to the management HTTP API (internal/mgmt), which
// mounts Handler at "/" on its own listener, so every API call is a
// relative URL such as /api/queues. It asks for a user name and password
// in a small form, keeps them in sessionStorage for the tab, and sends
// them as an HTTP basic Authorization header; a 401 brings the form back.
//
// Views (hash routes): #/overview, #/queues (with purge and delete),
// #/exchanges and #/connections, each refreshed every 5 seconds. Elements a
// test needs carry stable ids and data-testid attributes; webui_test.go
// drives the page in headless Chromium through chromedriver.
package webui
