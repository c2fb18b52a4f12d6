//! A local emulator of the **Microsoft identity platform v2.0** endpoints that a public
//! client (a desktop app with no secret) uses, served over real HTTP or HTTPS on loopback.
//!
//! Tests start it in-process through [`Emulator::start`] and steer it with the control API
//! (revoke sessions, rotate keys, approve device codes, Conditional Access knobs, broken ID
//! tokens); the demo runs the `m365-emulator` binary. A client finds everything from the
//! authority `{base_url}/{tenant_id}` (or `{base_url}/common`, `{base_url}/organizations`) and
//! the discovery document, exactly as it would against `https://login.microsoftonline.com`, so
//! a client written against Microsoft's documentation works against the emulator unchanged.
//! The same server also serves the **Microsoft Graph v1.0** endpoints such a client calls with
//! its access tokens (users and people search, Teams presence, photos; see
//! [Microsoft Graph](#microsoft-graph)).
//!
//! ```no_run
//! use std::time::Duration;
//! use m365_emulator::{Config, Emulator};
//!
//! let emulator = Emulator::start(Config {
//!     access_token_lifetime: Duration::from_secs(2),
//!     device_code_interval: Duration::from_secs(1),
//!     ..Config::default()
//! })?;
//! let authority = emulator.authority(); // http://127.0.0.1:PORT/<tenant id>
//! # let _ = authority;
//! emulator.revoke_refresh_tokens("AdeleV@contoso.example");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What is emulated, and after which documentation
//!
//! | Endpoint | Follows |
//! |---|---|
//! | `GET /{tenant}/v2.0/.well-known/openid-configuration` | <https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc> |
//! | `GET /{tenant}/discovery/v2.0/keys` (JWKS) | same; <https://learn.microsoft.com/entra/identity-platform/signing-key-rollover> |
//! | `GET`/`POST /{tenant}/oauth2/v2.0/authorize` | <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow>, RFC 7636 (PKCE) |
//! | `POST /{tenant}/oauth2/v2.0/token` | the auth-code flow page (codes, refresh), <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>, RFC 8628 |
//! | `POST /{tenant}/oauth2/v2.0/devicecode`, `GET`/`POST /devicelogin` | the device-code page, RFC 8628 |
//! | `GET /{tenant}/oauth2/v2.0/logout` | the OIDC page (sign-out) |
//! | `GET /oidc/userinfo` | the OIDC page (UserInfo; Microsoft serves it from Graph) |
//! | `GET /error?code=n`, `GET /` | small informational pages |
//!
//! Redirect URIs follow <https://learn.microsoft.com/entra/identity-platform/reply-url>, ID
//! tokens <https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference>,
//! errors <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>, claims
//! challenges <https://learn.microsoft.com/entra/identity-platform/claims-challenge>.
//!
//! `{tenant}` accepts the tenant id ([`TENANT_ID`]), the domain ([`TENANT_DOMAIN`]), `common`
//! and `organizations`. `consumers` answers `unauthorized_client` (AADSTS700016: the app is
//! for organisational accounts only); anything else `invalid_tenant` (AADSTS90002).
//!
//! ## Tenant, application, users
//!
//! * Tenant "Contoso", id [`TENANT_ID`], domain `contoso.example`.
//! * One public client, "Switchboard", id [`CLIENT_ID`], "Allow public client flows" on unless
//!   configured off. Registered redirect URIs: `http://localhost`, `http://127.0.0.1` (any
//!   port; the path must match, an empty path counts as `/`) and
//!   `https://login.microsoftonline.com/common/oauth2/nativeclient` (exact).
//! * Eight of Microsoft's demo personas ([`Emulator::users`]): Adele Vance
//!   (`AdeleV@contoso.example`), Alex Wilber, Megan Bowen, Lee Gu, Nestor Wilke, Patti
//!   Fernandez, Lynne Robbins, Isaiah Langer, with made-up object ids, titles, departments,
//!   `+1 425 555 01xx` office and `+1 206 555 01xx` mobile numbers.
//!
//! ## Discovery and keys
//!
//! The metadata document has Microsoft's fields. For a tenant id (or domain) the endpoints
//! carry the tenant id and `issuer` is `{base}/{tid}/v2.0`; for `common`/`organizations` the
//! endpoints carry that segment and `issuer` is literally `{base}/{tenantid}/v2.0`, as Microsoft
//! publishes it. `userinfo_endpoint` is `{base}/oidc/userinfo` and `msgraph_host` is the
//! emulator's `host:port` (Microsoft: `graph.microsoft.com`), so the Graph part can be found
//! the same way. `response_types_supported` lists only `code`, the one implemented.
//!
//! The JWKS entries are `{"kty":"RSA","use":"sig","kid","x5t","n","e","issuer"}`; `x5c` is
//! omitted (there is no certificate) and `kid` = `x5t` = base64url(SHA-1 of the key's
//! SubjectPublicKeyInfo). Keys are RSA 2048. [`Emulator::rotate_signing_key`] makes a new key
//! sign while the previous ones stay published; [`Emulator::retire_previous_keys`] drops them.
//! The JWKS is served with `Cache-Control: max-age=1, private`.
//!
//! ## Authorization code flow
//!
//! `GET .../authorize` takes `client_id`, `response_type=code`, `redirect_uri`, `scope`,
//! `state`, `response_mode` (`query` default, `fragment`, `form_post`), `code_challenge`,
//! `code_challenge_method`, `prompt` (`login`, `none`, `consent`, `select_account`),
//! `login_hint`, `domain_hint` (ignored), `nonce`, `claims`. PKCE with `S256` is required.
//! An unknown client, a missing or unregistered redirect URI give an HTML error page (status
//! 400, never a redirect); later errors are redirected with `error`, `error_description`,
//! `error_uri` and `state`. A valid request shows the consent page (below); `prompt=none`
//! answers at once with a code when `login_hint` names a user (the emulator's stand-in for a
//! session cookie), else with `login_required`.
//!
//! Accepting redirects with `302 Found` to `{redirect_uri}?code=…&state=…` (or `#…`, or the
//! auto-submitting `form_post` page). The code is opaque, single-use, valid
//! [`Config::authorization_code_lifetime`] (10 minutes), and bound to the client, the exact
//! `redirect_uri` string (port included), the challenge, scopes, `nonce` and user. Cancel
//! redirects with `error=access_denied` (AADSTS65004).
//!
//! ### Consent page form contract
//!
//! The page (200, `text/html`, title and heading "Sign in to Contoso") has one element per
//! line, attributes always in the order `type`, `name`, `value`, then `checked`, values
//! HTML-escaped (`& < > " '`):
//!
//! ```text
//! <form method="post" action="/{tenant}/oauth2/v2.0/authorize" id="consent">
//! <input type="hidden" name="client_id" value="...">
//! ...one hidden input per request parameter present among client_id, response_type,
//!    redirect_uri, scope, state, response_mode, code_challenge, code_challenge_method,
//!    prompt, login_hint, domain_hint, nonce, claims...
//! <label><input type="radio" name="login" value="AdeleV@contoso.example" checked> Adele Vance (AdeleV@contoso.example)</label>
//! <label><input type="radio" name="login" value="AlexW@contoso.example"> Alex Wilber (AlexW@contoso.example)</label>
//! ...
//! <button type="submit" name="decision" value="accept" id="accept">Accept</button>
//! <button type="submit" name="decision" value="cancel" id="cancel">Cancel</button>
//! </form>
//! ```
//!
//! `action` is the request's path as received. Exactly one radio is `checked`: the user named
//! by `login_hint`, else the first user. When `login_hint` names a user and there is no
//! `prompt`, the page ends with `<script>document.getElementById("accept").click();</script>`
//! (a browser with a session passes straight through). A scripted browser POSTs the hidden
//! fields plus `login=<UPN>` and `decision=accept|cancel` (form-encoded) to `action`; the
//! parameters are validated again. A missing `login` or an unknown user gives an error page
//! (AADSTS900144 / AADSTS50034). Error pages carry `<p id="error-code">AADSTSnnnn</p>`,
//! `<p id="error">oauth_error</p>` and `<p id="error-message">…</p>`.
//!
//! ## Token endpoint
//!
//! Form-encoded `POST .../token` with `grant_type`:
//!
//! * `authorization_code`: `client_id`, `code`, `redirect_uri`, `code_verifier` (`scope` is
//!   accepted and ignored: the code's scopes apply). The verifier must be 43–128 unreserved
//!   characters with `BASE64URL(SHA256(verifier)) == code_challenge`. A second redemption fails
//!   (AADSTS54005) and revokes the refresh tokens issued from the code. PKCE and redirect
//!   failures do not consume the code.
//! * `refresh_token`: `client_id`, `refresh_token`, optional `scope` (any Graph permissions the
//!   user consented to; without it the original scopes). Each redemption returns a new refresh
//!   token and the redeemed one stops working.
//! * `urn:ietf:params:oauth:grant-type:device_code`: `client_id`, `device_code`.
//!
//! Success is `{"token_type":"Bearer","scope","expires_in","ext_expires_in","access_token",
//! "refresh_token"?,"id_token"?}` with `Cache-Control: no-store, no-cache` and
//! `Pragma: no-cache`; `refresh_token` only with `offline_access` (always on a refresh),
//! `id_token` only with `openid`. `scope` lists the Graph permissions then, when `openid` was
//! asked, `profile openid email` (`User.Read Presence.Read.All profile openid email`);
//! `offline_access` is not listed. A request with only OIDC scopes gets `User.Read`.
//! `.default` expands to the registration's permissions (`User.Read User.ReadBasic.All
//! Presence.Read.All`). Graph permissions may be short (`User.Read`) or qualified
//! (`https://graph.microsoft.com/User.Read`, `00000003-0000-0000-c000-000000000000/User.Read`),
//! case-insensitive, from a list of real delegated permissions; other resources are invalid.
//!
//! **ID token** (RS256, header `{"typ":"JWT","alg":"RS256","kid"}`): `aud` (client id), `iss`
//! (`{base}/{tid}/v2.0`), `iat`, `nbf`, `exp` ([`Config::id_token_lifetime`]), `aio`, `email`
//! (with the `email` scope), `name`, `nonce` (from the authorize request; not on refresh or
//! device-code tokens), `oid`, `preferred_username` (UPN), `rh`, `sub` (pairwise per app, 43
//! characters), `tid`, `uti`, `ver: "2.0"`, and `amr: ["pwd","mfa"]` after a step-up (an
//! authorize request with `claims`).
//!
//! **Access token**: a Graph token in Graph's v1.0 format, signed by the same key: `aud`
//! `00000003-0000-0000-c000-000000000000`, `iss` `{base}/{tid}/` (in place of
//! `https://sts.windows.net/{tid}/`), `iat`, `nbf`, `exp`, `scp`, `oid`, `tid`, `upn`,
//! `unique_name`, `name`, `given_name`, `family_name`, `appid`, `app_displayname`, `amr`,
//! `idtyp`, `ver: "1.0"` and more. Clients must treat it as opaque; the emulator checks it with
//! [`Emulator::validate_access_token`].
//!
//! ## Device code flow
//!
//! `POST .../devicecode` (`client_id`, `scope`) returns `user_code` (nine characters from
//! `A–Z 2–9` without `I O`), `device_code`, `verification_uri` `{base}/devicelogin`,
//! `expires_in` (900), `interval` (5) and `message` ("To sign in, use a web browser to open the
//! page {base}/devicelogin and enter the code XXXXXXXXX to authenticate."). Polls answer
//! `authorization_pending` until the user approves or declines, then tokens exactly once. A
//! poll sooner than `interval` after the previous poll of the same device code answers
//! `slow_down` and adds 5 s to the interval expected from then on (RFC 8628 §3.5; the first
//! poll may come at once). [`Emulator::force_slow_down`] forces it.
//!
//! ### Device login page form contract
//!
//! `GET /devicelogin[?otc=CODE]` (200):
//!
//! ```text
//! <form method="post" action="/devicelogin" id="devicelogin">
//! <label>Code <input type="text" name="otc" value="" autocomplete="off"></label>
//! ...the same radio buttons named login (first user checked) and the same two buttons...
//! </form>
//! ```
//!
//! plus `<p id="notice">AADSTS53003: …</p>` while Conditional Access blocks the flow. POST
//! `otc` (case, spaces and dashes ignored), `login`, `decision=accept|cancel`; the result page
//! carries `<p id="outcome">X</p>`: `approved` (200), `declined` (200), `blocked` (403),
//! `invalid_code`, `expired`, `already_used`, `unknown_user`, `no_account`, `bad_request` (400).
//!
//! ## Errors
//!
//! JSON errors are `{"error","error_description","error_codes":[n],"timestamp":"YYYY-MM-DD
//! hh:mm:ssZ","trace_id","correlation_id","error_uri":"{base}/error?code=n"}` plus `suberror`
//! and `claims` when relevant, with `Content-Type: application/json; charset=utf-8`.
//! `error_description` is `AADSTSn: message\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp:
//! …`; the correlation id echoes the `client-request-id` header when sent. Status 400, except
//! 401 for `invalid_client`.
//!
//! | Case | `error` | AADSTS |
//! |---|---|---|
//! | missing parameter (also a non-form body: `grant_type`) | `invalid_request` | 900144 |
//! | malformed `response_mode`, `prompt`, `claims`, `code_challenge_method` | `invalid_request` | 90100 |
//! | token endpoint called with GET etc. | `invalid_request` | 900561 |
//! | unknown tenant / `consumers` | `invalid_tenant` / `unauthorized_client` | 90002 / 700016 |
//! | unknown `client_id` | `unauthorized_client` | 700016 |
//! | unregistered `redirect_uri` (error page only) | `invalid_request` | 50011 |
//! | `response_type` other than `code` | `unsupported_response_type` | 700051 |
//! | unknown or foreign scope, `.default` mixed with named permissions | `invalid_scope` | 70011 |
//! | no `code_challenge`; `plain` or no method | `invalid_request` | 9002325 |
//! | challenge or verifier not 43–128 unreserved characters | `invalid_request` | 501491 |
//! | user pressed Cancel | `access_denied` | 65004 |
//! | `prompt=none` without a known `login_hint` | `login_required` | 50058 |
//! | unknown `login` on the consent form (error page) | `invalid_request` | 50034 |
//! | unknown code / code of another client | `invalid_grant` | 70000 |
//! | code redeemed twice | `invalid_grant` | 54005 |
//! | code expired | `invalid_grant` | 70008 |
//! | `redirect_uri` differs from the authorize request's | `invalid_grant` | 500112 |
//! | PKCE verifier does not match | `invalid_grant` | 50148 |
//! | unknown refresh token | `invalid_grant` | 9002313 |
//! | refresh token of another client / already redeemed | `invalid_grant` | 70000 |
//! | refresh token revoked (sessions revoked, or code replay) | `invalid_grant`, `suberror: bad_token` | 50173 |
//! | refresh token past its inactivity window | `invalid_grant`, `suberror: bad_token` | 700082 |
//! | refresh `scope` beyond the user's consent | `invalid_grant`, `suberror: consent_required` | 65001 |
//! | claims challenge pending | `interaction_required` + `claims` | 50076 |
//! | unsupported `grant_type` | `unsupported_grant_type` | 70003 |
//! | public client flows off (devicecode and polls) | `invalid_client` (401) | 7000218 |
//! | `client_secret`/`client_assertion` sent | `invalid_client` (401) | 700025 |
//! | device code pending | `authorization_pending` | 70016 |
//! | polled too fast / forced | `slow_down` | 70016 |
//! | user declined | `authorization_declined` | 70000 |
//! | device code expired | `expired_token` | 70020 |
//! | unknown device code / another client's | `bad_verification_code` | 70018 |
//! | device code already redeemed | `invalid_grant` | 70000 |
//! | Conditional Access blocks the device-code flow | `invalid_grant` | 53003 |
//!
//! # Microsoft Graph
//!
//! Graph v1.0 lives under `{base_url}/v1.0` on the same server (where a client would use
//! `https://graph.microsoft.com/v1.0`; the discovery document's `msgraph_host` names it). Every
//! endpoint takes `Authorization: Bearer <access token>` issued by the emulator.
//!
//! | Endpoint | Follows | Delegated permission (any of) |
//! |---|---|---|
//! | `GET /v1.0/me` | <https://learn.microsoft.com/graph/api/user-get> | `User.Read` (full profile), `User.ReadBasic.All` (basic) |
//! | `GET /v1.0/users/{id \| userPrincipalName}` | same | `User.Read.All` (full), `User.ReadBasic.All` (basic), `User.Read` for oneself (full) |
//! | `GET /v1.0/users` with `$select`, `$search`, `$top`, `$count`, `$skiptoken` | <https://learn.microsoft.com/graph/api/user-list>, <https://learn.microsoft.com/graph/search-query-parameter>, <https://learn.microsoft.com/graph/aad-advanced-queries>, <https://learn.microsoft.com/graph/paging> | `User.Read.All` (full), `User.ReadBasic.All` (basic) |
//! | `GET /v1.0/me/presence` | <https://learn.microsoft.com/graph/api/presence-get> | `Presence.Read`, `Presence.Read.All`, `Presence.ReadWrite` |
//! | `GET /v1.0/users/{id}/presence`, `GET /v1.0/communications/presences/{id}` | same | `Presence.Read.All` (oneself: as `/me/presence`) |
//! | `POST /v1.0/communications/getPresencesByUserId` | <https://learn.microsoft.com/graph/api/cloudcommunications-getpresencesbyuserid> | `Presence.Read.All` |
//! | `POST /v1.0/users/{id}/presence/setPresence` | <https://learn.microsoft.com/graph/api/presence-setpresence> | `Presence.ReadWrite` |
//! | `POST .../presence/clearPresence` | <https://learn.microsoft.com/graph/api/presence-clearpresence> | `Presence.ReadWrite` |
//! | `POST .../presence/setUserPreferredPresence` | <https://learn.microsoft.com/graph/api/presence-setuserpreferredpresence> | `Presence.ReadWrite` |
//! | `POST .../presence/clearUserPreferredPresence` | <https://learn.microsoft.com/graph/api/presence-clearuserpreferredpresence> | `Presence.ReadWrite` |
//! | `GET /v1.0/{me \| users/{id}}/photo/$value`, `.../photos/{size}/$value` | <https://learn.microsoft.com/graph/api/profilephoto-get> | others: `User.ReadBasic.All`, `User.Read.All`, `ProfilePhoto.Read.All`; oneself: also `User.Read` |
//!
//! The four presence actions also answer under `/v1.0/me/presence/...`; they act only on the
//! signed-in user (`{id}` is the user's object id or UPN; anyone else: 403 `Forbidden`).
//!
//! ## Requests, responses, errors
//!
//! The token is checked like [`Emulator::validate_access_token`] does (published key,
//! signature, audience Graph, issuer, lifetime on the wall clock, user in the directory).
//! Missing or rejected: `401` with `InvalidAuthenticationToken` and `WWW-Authenticate: Bearer
//! realm="", authorization_uri="{base}/common/oauth2/authorize",
//! client_id="00000003-0000-0000-c000-000000000000"`. Every Graph response carries a fresh
//! `request-id` and `client-request-id` (the caller's, echoed, or a fresh GUID). Successful
//! JSON is `application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8`
//! with `@odata.context` `{base}/v1.0/$metadata#...`; errors are `application/json`:
//!
//! ```text
//! {"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.",
//!           "innerError":{"date":"2026-11-26T08:14:02","request-id":"<guid>","client-request-id":"<guid>"}}}
//! ```
//!
//! | Case | Status | `code` |
//! |---|---|---|
//! | no, malformed, expired, foreign or unknown-user token | 401 | `InvalidAuthenticationToken` |
//! | directory permission missing (users, photos) | 403 | `Authorization_RequestDenied` |
//! | presence permission missing; presence write for another user | 403 | `Forbidden` |
//! | `$search` without `ConsistencyLevel: eventual` | 400 | `Request_UnsupportedQuery` ("Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'") |
//! | `$search` syntax error; `$top` outside 1–999 | 400 | `Request_BadRequest` |
//! | `$search` on an unsearchable property; `$filter`, `$orderby`, `$expand`, `$skip` | 400 | `Request_UnsupportedQuery` |
//! | unknown `$select` property, unknown `$` option, bad body, invalid presence values, `sessionId` not the caller's app, expiration out of range, more than 650 ids, a non-GUID id | 400 | `BadRequest` |
//! | unrecognised `$skiptoken` | 400 | `Directory_ExpiredPageToken` |
//! | unknown path under `/v1.0` | 400 | `BadRequest` ("Resource not found for the segment '…'.") |
//! | unknown user (`/users/{id}`, photos) | 404 | `Request_ResourceNotFound` |
//! | unknown user (`/users/{id}/presence`); `clearPresence` of no session | 404 | `NotFound` |
//! | no photo, or an undocumented size | 404 | `ImageNotFound` |
//! | presence budget exceeded, or [`Emulator::force_throttle`] | 429 + `Retry-After` | `TooManyRequests` |
//! | [`Emulator::force_unavailable`] | 503 + `Retry-After` | `serviceNotAvailable` |
//!
//! ## Permissions and consent
//!
//! The token's `scp` decides, per the table above. [`Config::consented_scopes`] (default
//! `User.Read User.ReadBasic.All Presence.Read.All Presence.ReadWrite`, deliberately not
//! `User.Read.All`) is what the tenant admin consented to: tokens carry only those
//! permissions, whatever the app asks for. Microsoft would stop an interactive sign-in that asks
//! for an unconsented admin-only permission at a "Need admin approval" page; the emulator
//! instead leaves it out of `scp` and of the token response's `scope` (as Microsoft does for
//! `.default`), so clients must read the granted `scope`. The refresh token remembers the
//! request, so after [`Emulator::set_consented_scopes`] the next refresh carries the newly
//! consented permission.
//!
//! With `User.ReadBasic.All` only, other users' basic properties (`id`, `displayName`,
//! `givenName`, `surname`, `mail`, `userPrincipalName`) are returned and every other selected
//! property reads as `null` (`[]` for `businessPhones` and `imAddresses`), with 200 rather than
//! 403, and they never match a `$search` clause. `/me` (and `/users/{own id}`) with `User.Read`
//! is the full profile.
//!
//! ## Users and people search
//!
//! A user has Graph's default properties (`businessPhones`, `displayName`, `givenName`,
//! `jobTitle`, `mail`, `mobilePhone`, `officeLocation`, `preferredLanguage` (`en-US`),
//! `surname`, `userPrincipalName`, `id`) and, on `$select` only, `accountEnabled`,
//! `companyName`, `department`, `imAddresses`, `mailNickname`. `$select` names ignore case;
//! `@odata.context` is `{base}/v1.0/$metadata#users` (with `(a,b)` after a `$select`,
//! `/$entity` for one user).
//!
//! `GET /v1.0/users` lists the directory in a stable order, `$top` per page (default 100, at
//! most 999). `$search` needs `ConsistencyLevel: eventual` and follows Microsoft's syntax:
//! `"property:text"` clauses in double quotes joined by upper-case `AND`/`OR`, parentheses
//! allowed. `displayName` is searched word by word (words split at spaces, lower-to-upper case
//! changes, letter/digit changes and symbols; every word of the text a prefix of a word of the
//! name, any order); the other properties (`givenName`, `surname`, `mail`,
//! `userPrincipalName`, `jobTitle`, ...) match as `startsWith`, as Microsoft documents for
//! properties other than `displayName`. `$count=true` adds `@odata.count` (all matches) only
//! with `ConsistencyLevel: eventual` and is silently ignored without, as Microsoft does. When
//! more remain, `@odata.nextLink` is an absolute URL on the emulator repeating the query with
//! an opaque `$skiptoken`; follow it as is (with the same headers).
//!
//! ```text
//! GET /v1.0/users?$search="displayName:adele" OR "mail:adele"&$select=id,displayName&$count=true
//! ConsistencyLevel: eventual
//! → {"@odata.context":"{base}/v1.0/$metadata#users(id,displayName)","@odata.count":1,
//!    "value":[{"id":"6e7b768e-…","displayName":"Adele Vance"}]}
//! ```
//!
//! [`Config::synthetic_users`] and [`Emulator::add_synthetic_users`] add "Test User 0001"…
//! (`TestUser0001@contoso.example`) for large-directory tests, such as watching 650+
//! colleagues.
//!
//! ## Presence
//!
//! A presence object is
//! `{"id","availability","activity","statusMessage":null,"outOfOfficeSettings":{"message":null,"isOutOfOffice":false},"sequenceNumber"}`
//! (plus `@odata.context` on single GETs). `getPresencesByUserId` takes `{"ids":[...]}` (object
//! ids, at most 650) and answers `{"@odata.context","value":[presence...]}` in request order;
//! ids that name no user are left out (duplicates answered once), a non-GUID id fails the
//! request. `GET /users/{id}/presence` wants the object id too.
//!
//! `setPresence` takes `{"sessionId","availability","activity","expirationDuration"?}`:
//! `sessionId` must be the calling app's client id (the token's `appid`), the pair one of
//! `Available/Available`, `Busy/InACall`, `Busy/InAConferenceCall`, `Away/Away`,
//! `DoNotDisturb/Presenting`, the ISO 8601 duration 5 minutes to 4 hours (default 5 minutes).
//! A new call refreshes the app's session. `clearPresence` (`{"sessionId"}`) removes it (404
//! if there is none). `setUserPreferredPresence` takes `{"availability","activity",
//! "expirationDuration"?}` with `Available/Available`, `Busy/Busy`, `DoNotDisturb/DoNotDisturb`,
//! `BeRightBack/BeRightBack`, `Away/Away`, `Offline/OffWork` (default expiry 1 day for `Busy`
//! and `DoNotDisturb`, else 7 days); `clearUserPreferredPresence` clears it. All four answer
//! 200 with an empty body.
//!
//! Aggregation, as Microsoft documents it: the preferred presence wins while set, but only if
//! the user has at least one session; otherwise the busiest unexpired session wins
//! (`DoNotDisturb > Busy > Available > Away/BeRightBack > Offline`; ties go to the latest set);
//! no session is `Offline/Offline`. An `Available` app session that is not refreshed fades to
//! `AvailableIdle/Inactive` after 5 minutes and `Away/Away` after 10 (Microsoft's timeout), and
//! expires at its expiration. Session expiry runs on the presence clock, which
//! [`Emulator::advance_clock`] moves forward.
//!
//! ## Throttling
//!
//! Presence reads (`GET .../presence`, `getPresencesByUserId`) draw on a budget per
//! application (the token's `appid`): [`Config::presence_budget`], by default 1,500 per 30 s
//! (the limit the presence API pages state; the general throttling page now lists a higher
//! one). It is a sliding window over admitted requests: beyond it, `429 TooManyRequests` with
//! `Retry-After` = whole seconds until the oldest admitted request leaves the window (at least
//! 1); refused requests do not count. Requests refused for authentication or permission never
//! reach the budget; the budget check comes before the ids in the path or body are validated. The presence writes,
//! users and photos are not budgeted. [`Emulator::max_presence_requests_in_any_window`] proves
//! a client stayed within a budget; every Graph request is also in [`Emulator::requests`].
//!
//! ## Photos
//!
//! Every other user has a photo (Adele Vance does, Alex Wilber does not; likewise the
//! synthetic users): a baseline JPEG of one colour per user, at the size asked (`48x48`,
//! `64x64`, `96x96`, `120x120`, `240x240`, `360x360`, `432x432`, `504x504`, `648x648`;
//! `photo/$value` gives 648×648), `Content-Type: image/jpeg`. Others answer 404
//! `ImageNotFound` ("Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException'
//! was thrown.").
//!
//! # Fidelity
//!
//! Matches Microsoft: endpoint paths and discovery; `{tenantid}` issuer for multi-tenant
//! authorities; JWKS shape and key rollover with old keys still published; loopback redirect
//! URIs matching on any port; error body shape, AADSTS prefixes and trace lines; redirected
//! versus displayed authorize errors; single-use codes with replay revoking tokens; code bound
//! to the exact redirect URI; RS256 ID tokens with the documented claims and pairwise `sub`;
//! refresh-token revocation by `TokensValidFrom` (like `revokeSignInSessions`); the device-code
//! response and polling errors; AADSTS7000218 when public client flows are off; AADSTS53003 for
//! Conditional Access; claims challenges with `claims` on `interaction_required`.
//!
//! Deliberately differs:
//! * One tenant, one app, fixed users; no passwords, no real MFA (any `claims` parameter on an
//!   interactive sign-in counts as a completed step-up), no sessions or cookies (`prompt=none`
//!   treats a known `login_hint` as the session), and the consent page is the sign-in page.
//! * Stricter than Microsoft where clients commonly go wrong: PKCE with `S256` is mandatory
//!   (Microsoft also accepts `plain`, and some desktop requests without PKCE); refresh tokens
//!   rotate strictly (Microsoft's used refresh tokens may keep working); scopes are checked
//!   against a fixed list of Graph delegated permissions; polls faster than `interval` get
//!   `slow_down`.
//! * Some AADSTS numbers are the emulator's choice where Microsoft documents none or uses
//!   another for a nearby case: 9002325 for missing/plain PKCE (Microsoft's text is about
//!   cross-origin redemption), 70016 for `slow_down`, 70000 for `authorization_declined` and for
//!   reused refresh tokens, 70018 for an unknown device code. Messages are close to
//!   Microsoft's but not guaranteed identical; clients must branch on `error`/`suberror`.
//! * JWKS entries have no `x5c`; `kid`/`x5t` hash the public key, not a certificate.
//! * Access tokens: no `nonce` header (Microsoft adds one to Graph tokens), issuer
//!   `{base}/{tid}/`; they stay valid after revocation until `exp` (as Microsoft's do, without
//!   continuous access evaluation).
//! * Only `response_type=code`; no implicit, hybrid, ROPC, client-credentials or on-behalf-of
//!   flows; no `client_info` or `session_state` in responses; no `verification_uri_complete`.
//! * Lifetimes are configurable ([`Config`]); the refresh-token lifetime is a sliding
//!   inactivity window with no maximum age.
//! * Plain HTTP/1.1 or HTTPS (HTTP/1.1 over TLS 1.2/1.3) on one listener; no throttling on
//!   the identity endpoints.
//!
//! Graph, deliberately different or missing:
//! * Only the endpoints above, v1.0 only; no `$batch`, no change notifications, no `$filter`,
//!   `$orderby` or `$expand` (400, so a client relying on them notices), no `beta`.
//! * `$search` tokenises `displayName` only and treats other properties as `startsWith`, per
//!   Microsoft's text; Microsoft's real index may differ in corner cases. Results come in
//!   directory order (Microsoft's order is unspecified).
//! * Presence: no `statusMessage`, out-of-office, `workLocation` or calendar-driven states
//!   (`InAMeeting` only through [`Emulator::set_teams_client_presence`]); presence ids must be
//!   GUIDs; an unknown GUID is left out of `getPresencesByUserId` (Microsoft's behaviour for
//!   that is undocumented) and is 404 `NotFound` on `GET /users/{id}/presence`.
//!   `sequenceNumber` is a 16-digit counter bumped whenever the reported state changes.
//! * Tokens carry only consented permissions instead of a consent prompt (see above); with
//!   `User.ReadBasic.All`, non-basic properties read as null rather than failing.
//! * The forced faults hit any Graph request before authentication; Microsoft's real throttling
//!   has other limits too (global, per tenant) that are not modelled.
//! * Error messages are close to Microsoft's where documented and the emulator's own
//!   otherwise; branch on the status and `code`.
//!
//! # Control API
//!
//! All methods are synchronous and take `&Emulator`; the state sits behind one mutex shared
//! with the server.
//!
//! * Directory: [`Emulator::users`], [`Emulator::user`].
//! * Sessions: [`Emulator::revoke_refresh_tokens`], [`Emulator::active_refresh_tokens`],
//!   [`Emulator::require_claims_challenge`].
//! * Keys: [`Emulator::rotate_signing_key`], [`Emulator::retire_previous_keys`],
//!   [`Emulator::published_key_ids`], [`Emulator::tamper_next_id_token`].
//! * Device code: [`Emulator::approve_device_code`], [`Emulator::decline_device_code`],
//!   [`Emulator::force_slow_down`], [`Emulator::block_device_code_flow`],
//!   [`Emulator::set_allow_public_client_flows`].
//! * Observation: [`Emulator::requests`], [`Emulator::clear_requests`],
//!   [`Emulator::issued_tokens`].
//! * Graph tokens: [`Emulator::validate_access_token`], [`Emulator::issue_tokens`],
//!   [`Emulator::set_consented_scopes`], [`Emulator::consented_scopes`].
//! * Presence: [`Emulator::set_preferred_presence`], [`Emulator::clear_preferred_presence`],
//!   [`Emulator::set_teams_client_presence`], [`Emulator::clear_teams_client_presence`],
//!   [`Emulator::presence_of`], [`Emulator::presence_sessions`], [`Emulator::advance_clock`],
//!   [`Emulator::clock`].
//! * Throttling: [`Emulator::force_throttle`], [`Emulator::force_unavailable`],
//!   [`Emulator::presence_requests_in_window`],
//!   [`Emulator::max_presence_requests_in_any_window`].
//! * Directory: [`Emulator::add_synthetic_users`], [`Emulator::set_user_photo`].
//!
//! The calls that fail on a typo (unknown user, unknown user code, bad claims JSON, invalid
//! presence pair) panic with the reason, since they are test steering; each has a `try_` twin
//! returning [`ControlError`].

mod aad_error;
mod authorize;
mod clock;
mod directory;
mod error;
mod graph;
mod http;
mod identity;
mod ids;
mod jwt;
mod keys;
mod pkce;
mod redirect;
mod scopes;
mod server;
mod state;
mod tokens;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use directory::{
    APP_NAME, CLIENT_ID, GRAPH_APP_ID, GRAPH_RESOURCE, TENANT_DOMAIN, TENANT_ID, TENANT_NAME, User,
};
pub use error::{ControlError, TokenValidationError};
pub use graph::presence::{
    Activity, Availability, Presence, PresenceSession, TEAMS_CLIENT_SESSION, UnknownPresenceValue,
};
pub use state::RequestRecord;
pub use tokens::{AccessTokenInfo, Tamper, TokenResponse};

use crate::directory::{App, DEFAULT_CONSENTED_PERMISSIONS, has_photo_by_default, sample_users};
use crate::graph::GraphState;
use crate::graph::presence::{default_preferred_expiration, valid_preferred_combination};
use crate::graph::throttle::{Fault, FaultKind};
use crate::identity::{Grant, Identity, Lifetimes};
use crate::keys::{KeySet, SigningKey};
use crate::server::Server;
use crate::state::{Shared, State};
use crate::tokens::PendingTamper;

/// PEM files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate followed by any intermediates (PEM).
    pub cert_chain_pem: PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub private_key_pem: PathBuf,
}

/// How to run the emulator. Build with `Config { field: ..., ..Config::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen; default `127.0.0.1:0` (a free port).
    pub address: SocketAddr,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Access-token lifetime (`expires_in`); default 3599 s, as Microsoft's usual value.
    pub access_token_lifetime: Duration,
    /// ID-token lifetime; default 1 hour.
    pub id_token_lifetime: Duration,
    /// Refresh-token inactivity window; default 90 days.
    pub refresh_token_lifetime: Duration,
    /// Authorization-code lifetime; default 10 minutes.
    pub authorization_code_lifetime: Duration,
    /// Device-code lifetime (`expires_in`); default 900 s.
    pub device_code_lifetime: Duration,
    /// Device-code polling interval (`interval`); default 5 s.
    pub device_code_interval: Duration,
    /// The app registration's "Allow public client flows"; default on.
    pub allow_public_client_flows: bool,
    /// Graph's presence budget per application: at most `.0` presence requests (`GET
    /// .../presence`, `getPresencesByUserId`) admitted in any `.1`; default 1,500 per 30 s,
    /// Microsoft's documented limit. Beyond it Graph answers 429 with `Retry-After`.
    pub presence_budget: (u32, Duration),
    /// The Graph permissions the tenant's admin consented to for the app; tokens carry only
    /// these. Default `User.Read User.ReadBasic.All Presence.Read.All Presence.ReadWrite`
    /// (not `User.Read.All`).
    pub consented_scopes: Vec<String>,
    /// Synthetic users to add at start ("Test User 0001", ...; see
    /// [`Emulator::add_synthetic_users`]); default 0.
    pub synthetic_users: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: None,
            access_token_lifetime: Duration::from_secs(3599),
            id_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(90 * 24 * 3600),
            authorization_code_lifetime: Duration::from_secs(600),
            device_code_lifetime: Duration::from_secs(900),
            device_code_interval: Duration::from_secs(5),
            allow_public_client_flows: true,
            presence_budget: (1500, Duration::from_secs(30)),
            consented_scopes: DEFAULT_CONSENTED_PERMISSIONS.map(str::to_owned).to_vec(),
            synthetic_users: 0,
        }
    }
}

/// A running emulator. Dropping it (or [`Emulator::stop`]) shuts the server down.
pub struct Emulator {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    server: Server,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator").field("base_url", &self.shared.base_url).finish_non_exhaustive()
    }
}

impl Emulator {
    /// Generates the first signing key, binds the listener and starts serving on a thread of
    /// its own; returns once the listener is bound (requests can be sent at once).
    ///
    /// # Errors
    /// Binding fails, the TLS files cannot be read or do not match, or key generation fails.
    pub fn start(config: Config) -> io::Result<Emulator> {
        let tls = config.tls.as_ref().map(server::load_tls).transpose()?;
        let listener = std::net::TcpListener::bind(config.address)?;
        let local_addr = listener.local_addr()?;
        let host = match local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{}", SocketAddr::new(host, local_addr.port()));
        let mut identity = Identity::new(
            App::switchboard(config.allow_public_client_flows),
            sample_users(),
            Lifetimes {
                access_token: config.access_token_lifetime,
                id_token: config.id_token_lifetime,
                refresh_token: config.refresh_token_lifetime,
                auth_code: config.authorization_code_lifetime,
                device_code: config.device_code_lifetime,
                device_code_interval: config.device_code_interval,
            },
        );
        identity.set_consented_permissions(config.consented_scopes.clone());
        let photos = identity
            .users()
            .iter()
            .enumerate()
            .filter(|(i, _)| has_photo_by_default(*i))
            .map(|(_, u)| u.id.clone())
            .collect();
        let (limit, window) = config.presence_budget;
        let graph = GraphState::new(limit, window, photos);
        let keys = KeySet::new(SigningKey::generate()?);
        let mut state = State { identity, keys, tamper: None, issued: HashMap::new(), graph };
        state.add_synthetic_users(config.synthetic_users);
        let shared = Arc::new(Shared::new(base_url, TENANT_ID.to_owned(), state));
        let server = server::spawn(listener, tls, http::router(shared.clone()))?;
        tracing::info!(base_url = %shared.base_url, "identity platform emulator listening");
        Ok(Emulator { shared, local_addr, server })
    }

    /// Shuts the server down and joins its thread (dropping does the same).
    pub fn stop(mut self) {
        self.server.stop();
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The socket the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The tenant id ([`TENANT_ID`]).
    pub fn tenant_id(&self) -> &str {
        &self.shared.tenant_id
    }

    /// The registered public client's id ([`CLIENT_ID`]).
    pub fn client_id(&self) -> &str {
        CLIENT_ID
    }

    /// `{base_url}/{tenant_id}`, the authority a client configures.
    pub fn authority(&self) -> String {
        format!("{}/{}", self.shared.base_url, self.shared.tenant_id)
    }

    /// The directory's users.
    pub fn users(&self) -> Vec<User> {
        self.shared.lock().identity.users().to_vec()
    }

    /// A user by user principal name (case-insensitive) or object id.
    pub fn user(&self, login: &str) -> Option<User> {
        self.shared.lock().identity.find_user(login).cloned()
    }

    // ----- control API ---------------------------------------------------------------------

    /// Revokes all of the user's refresh tokens (like Graph's `revokeSignInSessions`): each
    /// later redemption fails with `invalid_grant` AADSTS50173. Access tokens stay valid
    /// until they expire, as with Microsoft.
    ///
    /// # Panics
    /// If no user has this UPN (see [`Emulator::try_revoke_refresh_tokens`]).
    pub fn revoke_refresh_tokens(&self, upn: &str) {
        if let Err(e) = self.try_revoke_refresh_tokens(upn) {
            panic!("revoke_refresh_tokens: {e}");
        }
    }

    /// [`Emulator::revoke_refresh_tokens`], reporting an unknown user instead of panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`].
    pub fn try_revoke_refresh_tokens(&self, upn: &str) -> Result<(), ControlError> {
        self.shared.lock().identity.revoke_user(upn, SystemTime::now())
    }

    /// Generates a new signing key (this takes a moment), signs new tokens with it and keeps
    /// publishing the previous keys. Returns the new `kid`.
    pub fn rotate_signing_key(&self) -> String {
        let key = SigningKey::generate().expect("RSA key generation needs only the OS RNG");
        let kid = self.shared.lock().keys.rotate(key);
        tracing::info!(%kid, "signing key rotated");
        kid
    }

    /// Stops publishing every key but the current one; tokens signed by them no longer
    /// validate.
    pub fn retire_previous_keys(&self) {
        self.shared.lock().keys.retire_previous();
    }

    /// The `kid`s in the JWKS, current (signing) key first.
    pub fn published_key_ids(&self) -> Vec<String> {
        self.shared.lock().keys.kids()
    }

    /// Approves a pending device code as `upn` (what the user would do on `/devicelogin`).
    /// With [`Emulator::block_device_code_flow`] on, the device then gets AADSTS53003.
    ///
    /// # Panics
    /// On an unknown user or user code, or a device code that expired or was already
    /// completed (see [`Emulator::try_approve_device_code`]).
    pub fn approve_device_code(&self, user_code: &str, upn: &str) {
        if let Err(e) = self.try_approve_device_code(user_code, upn) {
            panic!("approve_device_code: {e}");
        }
    }

    /// [`Emulator::approve_device_code`], reporting failures instead of panicking.
    ///
    /// # Errors
    /// Unknown user or user code, expired or already completed device code.
    pub fn try_approve_device_code(&self, user_code: &str, upn: &str) -> Result<(), ControlError> {
        self.shared.lock().identity.approve_device(user_code, upn, SystemTime::now()).map(|_| ())
    }

    /// Declines a pending device code: the device gets `authorization_declined`.
    ///
    /// # Panics
    /// On an unknown user code, or a device code that expired or was already completed (see
    /// [`Emulator::try_decline_device_code`]).
    pub fn decline_device_code(&self, user_code: &str) {
        if let Err(e) = self.try_decline_device_code(user_code) {
            panic!("decline_device_code: {e}");
        }
    }

    /// [`Emulator::decline_device_code`], reporting failures instead of panicking.
    ///
    /// # Errors
    /// Unknown user code, expired or already completed device code.
    pub fn try_decline_device_code(&self, user_code: &str) -> Result<(), ControlError> {
        self.shared.lock().identity.decline_device(user_code, SystemTime::now())
    }

    /// The next `n` device-code polls answer `slow_down` whatever their timing (each one also
    /// raises that device code's expected interval by 5 s, per RFC 8628).
    pub fn force_slow_down(&self, n: u32) {
        self.shared.lock().identity.force_slow_down(n);
    }

    /// Conditional Access blocks (or stops blocking) the device-code flow: an approved device
    /// code then yields `invalid_grant` AADSTS53003 and the device login page says so.
    pub fn block_device_code_flow(&self, block: bool) {
        self.shared.lock().identity.set_block_device_code_flow(block);
    }

    /// The app registration's "Allow public client flows": when off, the device-code endpoint
    /// and device-code polls answer `invalid_client` AADSTS7000218.
    pub fn set_allow_public_client_flows(&self, allow: bool) {
        self.shared.lock().identity.set_allow_public_client_flows(allow);
    }

    /// The user's next refresh-token redemptions answer `interaction_required` (AADSTS50076)
    /// with `claims` (a JSON object, e.g.
    /// `{"access_token":{"capolids":{"essential":true,"values":["<policy id>"]}}}`), until an
    /// interactive authorization request whose `claims` parameter contains it completes.
    ///
    /// # Panics
    /// On an unknown user or claims that are not a JSON object (see
    /// [`Emulator::try_require_claims_challenge`]).
    pub fn require_claims_challenge(&self, upn: &str, claims: &str) {
        if let Err(e) = self.try_require_claims_challenge(upn, claims) {
            panic!("require_claims_challenge: {e}");
        }
    }

    /// [`Emulator::require_claims_challenge`], reporting failures instead of panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`], [`ControlError::InvalidClaims`].
    pub fn try_require_claims_challenge(
        &self,
        upn: &str,
        claims: &str,
    ) -> Result<(), ControlError> {
        self.shared.lock().identity.require_claims_challenge(upn, claims)
    }

    /// The next token response that carries an ID token carries one broken as `tamper` says.
    pub fn tamper_next_id_token(&self, tamper: Tamper) {
        let rogue_key = (tamper == Tamper::UnknownKey)
            .then(|| SigningKey::generate().expect("RSA key generation needs only the OS RNG"));
        self.shared.lock().tamper = Some(PendingTamper { kind: tamper, rogue_key });
    }

    /// Every request served so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests()
    }

    /// Forgets the recorded requests, and the presence-request history behind
    /// [`Emulator::presence_requests_in_window`] and
    /// [`Emulator::max_presence_requests_in_any_window`] (not the current budget window).
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
        self.shared.lock().graph.throttle.clear_history();
    }

    /// Every access, ID and refresh token issued to the user so far, oldest first (e.g. to
    /// check that a client leaves none of them on disk or in logs). Empty for unknown users.
    pub fn issued_tokens(&self, upn: &str) -> Vec<String> {
        let state = self.shared.lock();
        let Some(user) = state.identity.find_user(upn) else {
            return Vec::new();
        };
        state.issued.get(&user.id).cloned().unwrap_or_default()
    }

    /// How many of the user's refresh tokens would be accepted now (0 for unknown users).
    pub fn active_refresh_tokens(&self, upn: &str) -> usize {
        self.shared.lock().identity.active_refresh_tokens(upn, SystemTime::now())
    }

    /// Validates a Graph access token this emulator issued (published key, signature,
    /// audience, issuer, `nbf`/`exp` without skew) and says whose it is and what it grants.
    ///
    /// # Errors
    /// The [`TokenValidationError`] describing the first failed check.
    pub fn validate_access_token(
        &self,
        token: &str,
    ) -> Result<AccessTokenInfo, TokenValidationError> {
        let state = self.shared.lock();
        tokens::validate_access_token(
            &state.keys,
            self.shared.issuer(),
            state.identity.users(),
            token,
            SystemTime::now(),
        )
    }

    /// Issues tokens for `upn` directly, as if the user had signed in with `scope` (e.g.
    /// `"openid offline_access User.Read Presence.Read.All"`); handy for Graph tests that do
    /// not exercise sign-in.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`], [`ControlError::InvalidScope`].
    pub fn issue_tokens(&self, upn: &str, scope: &str) -> Result<TokenResponse, ControlError> {
        let now = SystemTime::now();
        let mut state = self.shared.lock();
        let user = state
            .identity
            .find_user(upn)
            .cloned()
            .ok_or_else(|| ControlError::UnknownUser(upn.to_owned()))?;
        let scopes = state
            .identity
            .parse_scopes(scope)
            .map_err(|e| ControlError::InvalidScope(format!("AADSTS{}: {}", e.code, e.message)))?;
        let grant = Grant {
            user,
            client_id: CLIENT_ID.to_owned(),
            scopes,
            nonce: None,
            mfa: false,
            family: ids::guid(),
            auth_time: now,
        };
        Ok(state.issue_tokens(self.shared.issuer(), &grant, now))
    }

    // ----- Microsoft Graph -----------------------------------------------------------------

    /// Sets the user's preferred presence as the user would in Teams (like Graph's
    /// `setUserPreferredPresence`), with Microsoft's default expiry (1 day for `Busy` and
    /// `DoNotDisturb`, 7 days otherwise). Valid pairs: `Available/Available`, `Busy/Busy`,
    /// `DoNotDisturb/DoNotDisturb`, `BeRightBack/BeRightBack`, `Away/Away`, `Offline/OffWork`.
    /// As Microsoft documents, it shows only while the user has at least one presence session
    /// (an application's `setPresence`, or [`Emulator::set_teams_client_presence`]).
    ///
    /// # Panics
    /// On an unknown user or an invalid pair (see [`Emulator::try_set_preferred_presence`]).
    pub fn set_preferred_presence(
        &self,
        upn: &str,
        availability: Availability,
        activity: Activity,
    ) {
        if let Err(e) = self.try_set_preferred_presence(upn, availability, activity) {
            panic!("set_preferred_presence: {e}");
        }
    }

    /// [`Emulator::set_preferred_presence`], reporting failures instead of panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`], [`ControlError::InvalidPresence`].
    pub fn try_set_preferred_presence(
        &self,
        upn: &str,
        availability: Availability,
        activity: Activity,
    ) -> Result<(), ControlError> {
        if !valid_preferred_combination(availability, activity) {
            return Err(ControlError::InvalidPresence(format!("{availability}/{activity}")));
        }
        let mut state = self.shared.lock();
        let id = user_id(&state, upn)?;
        let now = state.graph.now();
        let expiration = default_preferred_expiration(availability);
        state.graph.presence.set_preferred(&id, (availability, activity), expiration, now);
        Ok(())
    }

    /// Clears the user's preferred presence (as `clearUserPreferredPresence`).
    ///
    /// # Panics
    /// On an unknown user (see [`Emulator::try_clear_preferred_presence`]).
    pub fn clear_preferred_presence(&self, upn: &str) {
        if let Err(e) = self.try_clear_preferred_presence(upn) {
            panic!("clear_preferred_presence: {e}");
        }
    }

    /// [`Emulator::clear_preferred_presence`], reporting an unknown user instead of panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`].
    pub fn try_clear_preferred_presence(&self, upn: &str) -> Result<(), ControlError> {
        let mut state = self.shared.lock();
        let id = user_id(&state, upn)?;
        state.graph.presence.clear_preferred(&id);
        Ok(())
    }

    /// Simulates the user's Teams client: a presence session ([`TEAMS_CLIENT_SESSION`]) that
    /// shows `availability`/`activity` (any pair, e.g. `Busy/InAMeeting`) and neither fades
    /// nor expires, until [`Emulator::clear_teams_client_presence`] (the user signs out).
    ///
    /// # Panics
    /// On an unknown user (see [`Emulator::try_set_teams_client_presence`]).
    pub fn set_teams_client_presence(
        &self,
        upn: &str,
        availability: Availability,
        activity: Activity,
    ) {
        if let Err(e) = self.try_set_teams_client_presence(upn, availability, activity) {
            panic!("set_teams_client_presence: {e}");
        }
    }

    /// [`Emulator::set_teams_client_presence`], reporting an unknown user instead of
    /// panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`].
    pub fn try_set_teams_client_presence(
        &self,
        upn: &str,
        availability: Availability,
        activity: Activity,
    ) -> Result<(), ControlError> {
        let mut state = self.shared.lock();
        let id = user_id(&state, upn)?;
        let now = state.graph.now();
        state.graph.presence.set_session(
            &id,
            TEAMS_CLIENT_SESSION,
            (availability, activity),
            None,
            now,
        );
        Ok(())
    }

    /// Ends the simulated Teams client session (no-op when there is none).
    ///
    /// # Panics
    /// On an unknown user (see [`Emulator::try_clear_teams_client_presence`]).
    pub fn clear_teams_client_presence(&self, upn: &str) {
        if let Err(e) = self.try_clear_teams_client_presence(upn) {
            panic!("clear_teams_client_presence: {e}");
        }
    }

    /// [`Emulator::clear_teams_client_presence`], reporting an unknown user instead of
    /// panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`].
    pub fn try_clear_teams_client_presence(&self, upn: &str) -> Result<(), ControlError> {
        let mut state = self.shared.lock();
        let id = user_id(&state, upn)?;
        let now = state.graph.now();
        state.graph.presence.clear_session(&id, TEAMS_CLIENT_SESSION, now);
        Ok(())
    }

    /// The user's aggregated presence now (on the presence clock), as Graph would report it.
    ///
    /// # Panics
    /// On an unknown user (see [`Emulator::try_presence_of`]).
    pub fn presence_of(&self, upn: &str) -> Presence {
        self.try_presence_of(upn).unwrap_or_else(|e| panic!("presence_of: {e}"))
    }

    /// [`Emulator::presence_of`], reporting an unknown user instead of panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`].
    pub fn try_presence_of(&self, upn: &str) -> Result<Presence, ControlError> {
        let mut state = self.shared.lock();
        let id = user_id(&state, upn)?;
        let now = state.graph.now();
        Ok(state.graph.presence.presence(&id, now))
    }

    /// The user's unexpired presence sessions, oldest first: an application's `setPresence`
    /// session has its client id as `session_id`, and `updated_at` moves on every refresh.
    ///
    /// # Panics
    /// On an unknown user (see [`Emulator::try_presence_sessions`]).
    pub fn presence_sessions(&self, upn: &str) -> Vec<PresenceSession> {
        self.try_presence_sessions(upn).unwrap_or_else(|e| panic!("presence_sessions: {e}"))
    }

    /// [`Emulator::presence_sessions`], reporting an unknown user instead of panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`].
    pub fn try_presence_sessions(&self, upn: &str) -> Result<Vec<PresenceSession>, ControlError> {
        let mut state = self.shared.lock();
        let id = user_id(&state, upn)?;
        let now = state.graph.now();
        Ok(state.graph.presence.sessions(&id, now))
    }

    /// Moves the presence clock forward: presence sessions and preferred presence expire (and
    /// unrefreshed `Available` sessions fade) as if `by` had passed. Token lifetimes, the
    /// sign-in flows and the throttling windows keep wall-clock time, because clients check
    /// those against their own clocks.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().graph.clock_offset += by;
    }

    /// The presence clock's current time (wall clock plus every [`Emulator::advance_clock`]).
    pub fn clock(&self) -> SystemTime {
        self.shared.lock().graph.now()
    }

    /// The next `n` Graph requests (any endpoint, before authentication) answer `429
    /// TooManyRequests` with `Retry-After: retry_after` (whole seconds, at least 1). Replaces
    /// pending forced faults; `n = 0` cancels them.
    pub fn force_throttle(&self, n: u32, retry_after: Duration) {
        let fault = Fault { kind: FaultKind::Throttle, retry_after };
        self.shared.lock().graph.throttle.force(fault, n);
    }

    /// The next `n` Graph requests answer `503 serviceNotAvailable` with `Retry-After`.
    /// Replaces pending forced faults; `n = 0` cancels them.
    pub fn force_unavailable(&self, n: u32, retry_after: Duration) {
        let fault = Fault { kind: FaultKind::Unavailable, retry_after };
        self.shared.lock().graph.throttle.force(fault, n);
    }

    /// Presence requests admitted within the last `window` (refused ones, 429s and other
    /// errors before the budget check do not count).
    pub fn presence_requests_in_window(&self, window: Duration) -> usize {
        self.shared.lock().graph.throttle.admitted_within(window, Instant::now())
    }

    /// The most presence requests admitted within any `window`-long stretch so far (all
    /// applications together): assert it stays within a budget.
    pub fn max_presence_requests_in_any_window(&self, window: Duration) -> usize {
        self.shared.lock().graph.throttle.max_admitted_in_any_window(window)
    }

    /// Adds `n` synthetic users to the directory: "Test User 0001" (`TestUser0001@contoso.example`,
    /// given name "Test", surname "User 0001"), numbered on from earlier synthetic users, with
    /// stable object ids, job title "Agent", department "Contact Centre", phone numbers from
    /// Ofcom's drama ranges, and a photo for every other one. Returns them.
    pub fn add_synthetic_users(&self, n: usize) -> Vec<User> {
        self.shared.lock().add_synthetic_users(n)
    }

    /// Replaces the admin-consented Graph permissions ([`Config::consented_scopes`]); tokens
    /// issued from now on (including refreshes of earlier sign-ins) carry only these.
    pub fn set_consented_scopes(&self, scopes: &[&str]) {
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.shared.lock().identity.set_consented_permissions(scopes);
    }

    /// The admin-consented Graph permissions.
    pub fn consented_scopes(&self) -> Vec<String> {
        self.shared.lock().identity.consented_permissions().to_vec()
    }

    /// Gives the user a profile photo or takes it away (`ImageNotFound` then).
    ///
    /// # Panics
    /// On an unknown user (see [`Emulator::try_set_user_photo`]).
    pub fn set_user_photo(&self, upn: &str, present: bool) {
        if let Err(e) = self.try_set_user_photo(upn, present) {
            panic!("set_user_photo: {e}");
        }
    }

    /// [`Emulator::set_user_photo`], reporting an unknown user instead of panicking.
    ///
    /// # Errors
    /// [`ControlError::UnknownUser`].
    pub fn try_set_user_photo(&self, upn: &str, present: bool) -> Result<(), ControlError> {
        let mut state = self.shared.lock();
        let id = user_id(&state, upn)?;
        if present {
            state.graph.photos.insert(id);
        } else {
            state.graph.photos.remove(&id);
        }
        Ok(())
    }
}

/// The object id of the user with this UPN (or object id).
fn user_id(state: &State, upn: &str) -> Result<String, ControlError> {
    state
        .identity
        .find_user(upn)
        .map(|u| u.id.clone())
        .ok_or_else(|| ControlError::UnknownUser(upn.to_owned()))
}
