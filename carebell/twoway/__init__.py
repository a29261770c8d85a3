"""Two-way messaging: replies, keywords, confirm and cancel by text or call, consent."""
