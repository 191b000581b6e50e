// Start GOV.UK Frontend and MOJ Frontend.
//
// The GOV.UK page template adds `govuk-frontend-supported` to <body> with an inline <script>,
// which our Content-Security-Policy (`script-src 'self'`) forbids, so we add it here instead.
// A browser that runs this ES module supports GOV.UK Frontend's JavaScript.

import { initAll as initGovukFrontend } from './govuk-frontend.min.js'
import { initAll as initMojFrontend } from './moj-frontend.mjs'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')

initGovukFrontend()
initMojFrontend()
