"""Data in from the systems practices and pharmacies already run (SPEC §9): one
package per format — HL7 v2, FHIR R4, CSV — each parsing to plain data (pure, fuzzed)
and then ingesting through the same entry points as a staff edit."""
