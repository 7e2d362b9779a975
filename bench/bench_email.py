"""The personalised email of the delivery benchmarks (bench/send.py, bench/render.py) and of the
render plan's tests: greeting, a products loop with images, prices and links, a coupon, a
button. Plain constants, so that importing it seeds nothing."""

SUBJECT = "{{ contact.first_name|default:'Hello' }}, this week's picks"

MJML = """<mjml>
<mj-head><mj-preview>{{ contact.first_name|default:"Friend" }}, picked for you in
  {{ contact.city|default:"your city" }}</mj-preview></mj-head>
<mj-body>
  <mj-section><mj-column>
    <mj-text font-size="20px">Hello {{ contact.first_name|default:"there" }}!</mj-text>
    <mj-text>Thank you for being with us since {{ contact.created_at|date:"F Y" }}. Your customer number is
      {{ contact.external_id }}. Here is what we picked for you this week{% if contact.city %}, with free delivery
      to {{ contact.city }}{% endif %}:</mj-text>
    <mj-table>
      {% for product in event.products %}<tr>
        <td><a href="{{ product.url }}"><img src="{{ product.image_url }}" width="64" alt="{{ product.name }}"></a></td>
        <td><a href="{{ product.url }}">{{ product.name }}</a><br>{{ product.category }}</td>
        <td style="text-align:right">{{ product.price|floatformat:2 }} EUR</td>
      </tr>{% endfor %}
    </mj-table>
    <mj-text>Use the code <b>WEEK-{{ contact.external_id }}</b> for 10 % off your next order, valid for seven days.
      Questions? Reply to this email or visit <a href="https://shop.example/help">our help center</a>.</mj-text>
    <mj-button href="https://shop.example/new">See what is new</mj-button>
  </mj-column></mj-section>
</mj-body></mjml>"""

PRODUCTS = [
    {"product_id": f"sku-{n}", "name": name, "price": price, "category": category,
     "url": f"https://shop.example/p/sku-{n}", "image_url": f"https://cdn.shop.example/p/sku-{n}.jpg"}
    for n, (name, price, category) in enumerate(
        [("Trail Running Shoe", 89.9, "Shoes"), ("Rain Jacket", 129.0, "Outerwear"),
         ("Merino Socks", 14.5, "Accessories")]
    )
]  # fmt: skip
