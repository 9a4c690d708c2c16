from skyrig import SQLDatabase

db = SQLDatabase("orders", migrations="./migrations")
