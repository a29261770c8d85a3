"""The loopback simulator: fake SMS, voice and email providers (`providers`) and the
HTTP server that plays Twilio and an email service for them (`server`, its page
`page.html`). Enabled only while CAREBELL_SIM_ENABLED is on."""
