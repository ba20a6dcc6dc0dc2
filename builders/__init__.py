"""Builders: the seven sources from their native downloads, and the importer of the authors' release."""
