"""Import a rate card from CSV or XLSX: create and update listings and set prices, all or nothing.

By concern: ``columns`` (the file's columns, the refusal and the result), ``read`` (the upload to
rows), ``cells`` (a cell to a value), ``context`` (what rows are checked against, loaded once),
``check`` (each row by the listing services' rules, planned), ``preview`` (every change, old →
new), ``write`` (``import_rows``: check, preview, then every write in bulk), ``template`` (the
template download). The rules themselves are the listing services'; this package does the I/O.
"""
