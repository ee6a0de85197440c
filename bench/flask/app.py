"""The original stack, as the Flask tutorial would write it: Flask + Flask-SQLAlchemy reading the
products table tienda keeps, served by gunicorn (bench/run.sh --workload issue12 starts it with
`gunicorn -w 4`). Two routes, the ones the issue 12 workload asks: a product by id, and an offset
page with its total (Flask-SQLAlchemy's `paginate`, which runs the page query and a count).

    FLASK_DATABASE_URL=sqlite:////abs/path.db gunicorn -w 4 -b 127.0.0.1:18070 --chdir bench/flask app:app
    FLASK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/db ...

It only reads. SQLite keeps timestamps as integer microseconds (tienda's encoding), PostgreSQL as
timestamptz; both are sent as RFC 3339 like tienda does.
"""

import os
from datetime import datetime, timezone

from flask import Flask, abort, request
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
url = os.environ["FLASK_DATABASE_URL"]
app.config["SQLALCHEMY_DATABASE_URI"] = url
db = SQLAlchemy(app)
SQLITE = url.startswith("sqlite")
Time = db.BigInteger if SQLITE else db.DateTime(timezone=True)


class Product(db.Model):
    __tablename__ = "products"
    id = db.Column(db.BigInteger, primary_key=True)
    sku = db.Column(db.String)
    name = db.Column(db.String, nullable=False)
    description = db.Column(db.String)
    price_cents = db.Column(db.BigInteger, nullable=False)
    stock = db.Column(db.BigInteger, nullable=False)
    version = db.Column(db.BigInteger, nullable=False)
    created_at = db.Column(Time, nullable=False)
    updated_at = db.Column(Time, nullable=False)

    def to_dict(self):
        return {
            "id": self.id,
            "sku": self.sku,
            "name": self.name,
            "description": self.description,
            "price": f"{self.price_cents // 100}.{self.price_cents % 100:02d}",
            "stock": self.stock,
            "version": self.version,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


def rfc3339(value):
    if SQLITE:
        value = datetime.fromtimestamp(value / 1_000_000, tz=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@app.get("/api/v1/products/<int:product_id>")
def get_product(product_id):
    product = db.session.get(Product, product_id)
    if product is None:
        abort(404)
    return product.to_dict()


@app.get("/api/v1/products")
def list_products():
    page = request.args.get("page", 1, type=int)
    per_page = min(request.args.get("per_page", 20, type=int), 100)
    pagination = db.paginate(db.select(Product).order_by(Product.id), page=page, per_page=per_page)
    return {
        "items": [p.to_dict() for p in pagination.items],
        "page": page,
        "per_page": per_page,
        "total": pagination.total,
        "total_pages": pagination.pages,
    }
