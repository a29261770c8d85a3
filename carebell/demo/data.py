"""Fictional demo data: names, drugs, visit types and the wording patients agree to.

Phone numbers use the 555-0100 … 555-0199 block, which the North American Numbering
Plan reserves for fiction, under several area codes; email domains are the
example.org / example.com domains reserved by RFC 2606.
"""

from __future__ import annotations

ORGANIZATION_NAME = "Maple Health"
ORGANIZATION_SLUG = "maple-health"
CLINIC_NAME = "Maple Health Pediatrics"
PHARMACY_NAME = "Maple Health Pharmacy"
TIME_ZONE = "America/New_York"
#: Where the demo sites run when it is night in New York: about an hour apart all
#: round the world, so one of them is always in the middle of its morning.
DAYTIME_ZONES = (
    "Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
    "America/Denver", "America/Chicago", "America/New_York", "America/Halifax",
    "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Azores", "Europe/London",
    "Europe/Paris", "Europe/Athens", "Europe/Istanbul", "Asia/Dubai", "Asia/Karachi",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Singapore", "Asia/Tokyo", "Australia/Brisbane",
    "Pacific/Noumea", "Pacific/Auckland",
)  # fmt: skip
CLINIC_PHONE = "+12125550100"
PHARMACY_PHONE = "+12125550101"
EMAIL_DOMAINS = ("example.org", "example.com")

AREA_CODES = (
    "201", "202", "212", "215", "267", "301", "312", "347", "404", "412",
    "415", "503", "512", "602", "617", "646", "704", "713", "718", "786",
    "803", "857", "904", "917", "919", "929", "954", "973",
)  # fmt: skip

FIRST_NAMES = (
    "Avery", "Jordan", "Riley", "Casey", "Morgan", "Quinn", "Rowan", "Emerson",
    "Harper", "Elliot", "Sawyer", "Reese", "Skyler", "Dakota", "Finley", "Hayden",
    "Parker", "Kendall", "Blake", "Cameron", "Logan", "Peyton", "Sage", "Tatum",
    "Lucía", "Mateo", "Sofía", "Diego", "Valentina", "Santiago", "Camila", "Joaquín",
    "Isabela", "Tomás", "Renata", "Emiliano", "Ximena", "Andrés", "Mariana", "Nicolás",
)  # fmt: skip

LAST_NAMES = (
    "Ashford", "Brightwater", "Calloway", "Dunmore", "Everly", "Fairbanks", "Glenwood",
    "Hollister", "Ingram", "Jessup", "Kettering", "Larkspur", "Merriweather", "Northcott",
    "Oakhurst", "Pemberton", "Quimby", "Redfield", "Stillwater", "Thistlewood",
    "Underhill", "Vantreese", "Whitlock", "Yarborough", "Zellweger", "Alcántara",
    "Benavides", "Castañeda", "Echeverría", "Fuentealba", "Iturbide", "Montalvo",
    "Olmedo", "Quintanilla", "Saldívar", "Villaseñor",
)  # fmt: skip

APPOINTMENT_TYPES = ("Well visit", "Sick visit", "Follow-up", "Vaccination", "Sports physical")
PROVIDERS = (("DRV", "Dr. Vega"), ("DRO", "Dr. Okafor"), ("NPL", "N.P. Lindqvist"))
LOCATIONS = (("MAIN", "Main Street"), ("EAST", "East Annex"))
PRESCRIBERS = ("Dr. Halvorsen", "Dr. Marchetti", "Dr. Nakamura", "N.P. Ferreira")
RECALL_REASONS = ("Annual well visit", "Vaccination due", "Vision screening")

#: (drug, NDC, maintenance, DEA schedule). NDCs use labeler 99999, which is not assigned.
DRUGS = (
    ("Lisinopril 10 mg tablet", "99999-0101-01", True, ""),
    ("Atorvastatin 20 mg tablet", "99999-0102-01", True, ""),
    ("Metformin 500 mg tablet", "99999-0103-01", True, ""),
    ("Oxycodone 5 mg tablet", "99999-0201-01", False, "C2"),
    ("Levothyroxine 50 mcg tablet", "99999-0104-01", True, ""),
    ("Buprenorphine/naloxone 8/2 mg film", "99999-0301-01", True, "C3"),
    ("Amoxicillin 500 mg capsule", "99999-0105-01", False, ""),
    ("Alprazolam 0.5 mg tablet", "99999-0401-01", True, "C4"),
    ("Amlodipine 5 mg tablet", "99999-0106-01", True, ""),
    ("Pregabalin 75 mg capsule", "99999-0501-01", True, "C5"),
    ("Methylphenidate ER 18 mg tablet", "99999-0202-01", True, "C2"),
    ("Azithromycin 250 mg tablet", "99999-0107-01", False, ""),
    ("Zolpidem 10 mg tablet", "99999-0402-01", False, "C4"),
    ("Codeine/guaifenesin oral solution", "99999-0502-01", False, "C5"),
)

CONSENT_WORDING = (
    "I agree to receive automated text messages and calls from {site} about my "
    "prescriptions at the number I provided. Message frequency varies. Msg & data "
    "rates may apply. Reply HELP for help or STOP to opt out at any time. Consent is "
    "not a condition of purchase."
)
