"""CSV import of patients, contacts, appointments, prescriptions and fills."""
