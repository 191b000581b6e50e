"""Reference data: probation regions, PCC areas, service categories."""
