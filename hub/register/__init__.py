"""The public register's read model (`hub register run`) and the queries the web server answers from it."""
