"""HL7 v2 in: MLLP listener and batch files (SIU, ADT, RDE, RDS)."""
