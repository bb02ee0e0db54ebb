from avemo.cli import app

app(prog_name="avemo")
