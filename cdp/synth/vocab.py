"""Static vocabularies for the synthetic generator: names, nicknames, places,
products, stores, campaigns and text templates (Spanish and English).

Everything here is a plain tuple/dict so iteration order is fixed and output
stays deterministic.
"""

from __future__ import annotations

ES_MALE = (
    "José", "Antonio", "Manuel", "Francisco", "Juan", "David", "Javier", "Daniel",
    "Carlos", "Jesús", "Alejandro", "Miguel", "Rafael", "Pablo", "Pedro", "Ángel",
    "Sergio", "Fernando", "Jorge", "Luis", "Alberto", "Álvaro", "Adrián", "Diego",
    "Raúl", "Enrique", "Ramón", "Rubén", "Ignacio", "Iván", "Óscar", "Andrés",
    "Joaquín", "Víctor", "Tomás", "Juan Carlos", "José Luis", "Santiago", "Martín",
    "Nicolás", "Hugo", "Marcos", "Gonzalo", "Agustín", "Emilio",
)
ES_FEMALE = (
    "María", "Carmen", "Ana", "Isabel", "Laura", "Cristina", "Marta", "Lucía",
    "Paula", "Elena", "Sara", "Raquel", "Rocío", "Pilar", "Dolores", "Josefa",
    "Concepción", "Mercedes", "Rosario", "Teresa", "Beatriz", "Nuria", "Silvia",
    "Patricia", "Irene", "Andrea", "Alicia", "Inés", "Ángela", "Sofía", "Verónica",
    "Mónica", "Belén", "Consuelo", "Guadalupe", "María José", "María Ángeles",
    "Encarnación", "Noelia", "Begoña", "Montserrat", "Yolanda", "Eva", "Natalia",
)
EN_MALE = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph",
    "Thomas", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Steven",
    "Andrew", "Paul", "Joshua", "Kevin", "Edward", "Patrick", "Sean", "Liam",
    "Oliver", "Harry", "George", "Jack", "Samuel", "Benjamin", "Charles", "Ryan",
    "Conor", "Ciarán", "Eoin", "Nathan", "Peter", "Alexander", "Henry",
)
EN_FEMALE = (
    "Mary", "Elizabeth", "Jennifer", "Linda", "Patricia", "Susan", "Margaret",
    "Sarah", "Karen", "Jessica", "Emily", "Emma", "Olivia", "Sophie", "Charlotte",
    "Katherine", "Rebecca", "Laura", "Amy", "Hannah", "Rachel", "Victoria",
    "Chloe", "Grace", "Aoife", "Siobhán", "Niamh", "Róisín", "Megan", "Lucy",
    "Abigail", "Samantha", "Deborah", "Christine", "Helen", "Anne", "Zoë",
)
ES_SURNAMES = (
    "García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
    "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
    "Muñoz", "Álvarez", "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres",
    "Domínguez", "Vázquez", "Ramos", "Gil", "Ramírez", "Serrano", "Blanco", "Molina",
    "Morales", "Suárez", "Ortega", "Delgado", "Castro", "Ortiz", "Rubio", "Marín",
    "Sanz", "Núñez", "Iglesias", "Medina", "Garrido", "Cortés", "Castillo", "Santos",
    "Lozano", "Guerrero", "Cano", "Prieto", "Méndez", "Cruz", "Calvo", "Gallego",
    "Vidal", "León", "Márquez", "Herrera", "Peña", "Flores", "Cabrera", "Campos",
    "Vega", "Fuentes", "Carrasco", "Caballero", "Reyes", "Nieto", "Aguilar",
    "Pascual", "Santana", "Herrero", "Lorenzo", "Montero", "Hidalgo", "Giménez",
    "Ibáñez", "Ferrer", "Durán", "Santiago", "Benítez", "Mora", "Vicente", "Vargas",
    "Arias", "Carmona", "Crespo", "Román", "Pastor", "Soto", "Sáez", "Velasco",
    "Moya", "Soler", "Parra", "Esteban", "Bravo", "Gallardo", "Rojas", "Echeverría",
    "Peñalver", "Muñiz", "Briñas", "Zúñiga", "Quiñones", "Ordóñez", "Yáñez",
)
EN_SURNAMES = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson",
    "Thomas", "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker",
    "White", "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke",
    "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward",
    "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan",
    "Allen", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett",
    "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson",
    "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Khan",
    "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Foster",
    "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason", "Hunt", "Campbell",
    "O'Brien", "O'Connor", "Byrne", "Ryan", "Walsh", "O'Sullivan", "McCarthy",
    "Doyle", "Kennedy", "Lynch", "Murray", "Quinn", "Garcia", "Rodriguez",
    "Hernandez", "Lopez", "Gonzalez", "Nguyen", "Kim",
)

NICKNAMES = {
    "Francisco": ("Paco", "Curro", "Pancho"), "José": ("Pepe",), "Josefa": ("Pepa",),
    "Manuel": ("Manolo",), "Dolores": ("Lola",), "Concepción": ("Concha",),
    "Ignacio": ("Nacho",), "Enrique": ("Quique",), "Guadalupe": ("Lupe",),
    "Jesús": ("Chus", "Chuchi"), "Rosario": ("Charo",), "Mercedes": ("Merche",),
    "Consuelo": ("Chelo",), "Antonio": ("Toño", "Antoñito"), "Alejandro": ("Álex", "Alex"),
    "María José": ("Majo", "Marijose"), "Juan Carlos": ("Juanca",), "José Luis": ("Pepelu",),
    "Encarnación": ("Encarna",), "Montserrat": ("Montse",), "María Ángeles": ("Marian", "Maite"),
    "Santiago": ("Santi",), "Guillermo": ("Guille",), "Fernando": ("Nando",),
    "Cristina": ("Cris",), "Beatriz": ("Bea",), "Patricia": ("Patri",),
    "William": ("Bill", "Will", "Billy"), "Robert": ("Bob", "Rob", "Bobby"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"), "Margaret": ("Maggie", "Peggy", "Meg"),
    "Richard": ("Rick", "Dick", "Richie"), "James": ("Jim", "Jimmy", "Jamie"),
    "Michael": ("Mike", "Mick"), "Katherine": ("Kate", "Kathy", "Katie"),
    "Thomas": ("Tom", "Tommy"), "Edward": ("Ed", "Ted", "Eddie"), "Jennifer": ("Jen", "Jenny"),
    "Patrick": ("Paddy", "Pat"), "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"),
    "Anthony": ("Tony",), "Susan": ("Sue", "Susie"), "Rebecca": ("Becky", "Becca"),
    "Joseph": ("Joe", "Joey"), "Samuel": ("Sam",), "Benjamin": ("Ben",),
    "Alexander": ("Alex",), "Samantha": ("Sam",), "Deborah": ("Debbie", "Deb"),
    "Matthew": ("Matt",), "Andrew": ("Andy", "Drew"), "Victoria": ("Vicky", "Tori"),
    "Charles": ("Charlie", "Chuck"), "Abigail": ("Abby",), "Henry": ("Harry", "Hank"),
}

# country -> list of (city, region, postal prefix/pattern, tz key)
CITIES = {
    "ES": (
        ("Madrid", "Madrid", "28"), ("Madrid", "Madrid", "28"), ("Barcelona", "Cataluña", "08"),
        ("Barcelona", "Cataluña", "08"), ("Valencia", "Comunidad Valenciana", "46"),
        ("Sevilla", "Andalucía", "41"), ("Zaragoza", "Aragón", "50"), ("Málaga", "Andalucía", "29"),
        ("Bilbao", "País Vasco", "48"), ("A Coruña", "Galicia", "15"),
        ("Valladolid", "Castilla y León", "47"), ("Alicante", "Comunidad Valenciana", "03"),
        ("Córdoba", "Andalucía", "14"), ("Murcia", "Región de Murcia", "30"),
        ("Palma", "Illes Balears", "07"), ("Las Palmas de Gran Canaria", "Canarias", "35"),
        ("Granada", "Andalucía", "18"), ("Salamanca", "Castilla y León", "37"),
        ("Cádiz", "Andalucía", "11"), ("Logroño", "La Rioja", "26"), ("León", "Castilla y León", "24"),
    ),
    "GB": (
        ("London", "Greater London", "SW"), ("London", "Greater London", "N"),
        ("London", "Greater London", "E"), ("Manchester", "Greater Manchester", "M"),
        ("Birmingham", "West Midlands", "B"), ("Leeds", "West Yorkshire", "LS"),
        ("Glasgow", "Scotland", "G"), ("Edinburgh", "Scotland", "EH"), ("Bristol", "Avon", "BS"),
        ("Liverpool", "Merseyside", "L"), ("Cardiff", "Wales", "CF"),
    ),
    "US": (
        ("New York", "NY", "100"), ("Los Angeles", "CA", "900"), ("Chicago", "IL", "606"),
        ("Boston", "MA", "021"), ("Miami", "FL", "331"), ("Houston", "TX", "770"),
        ("Seattle", "WA", "981"), ("Austin", "TX", "787"),
    ),
    "IE": (
        ("Dublin", "Co. Dublin", "D0"), ("Dublin", "Co. Dublin", "D1"), ("Cork", "Co. Cork", "T12"),
        ("Galway", "Co. Galway", "H91"), ("Limerick", "Co. Limerick", "V94"),
    ),
}
COUNTRY_NAMES = {
    "ES": ("Spain", "España", "ESP", "spain"), "GB": ("United Kingdom", "UK", "England", "GBR"),
    "US": ("USA", "United States", "U.S."), "IE": ("Ireland", "Éire", "IRL"),
}
CURRENCY = {"ES": "EUR", "GB": "GBP", "US": "USD", "IE": "EUR"}
FX = {"EUR": 1.0, "GBP": 0.86, "USD": 1.08}

ES_STREETS = (
    "Calle Mayor", "Avenida de la Constitución", "Calle del Príncipe", "Plaza de España",
    "Calle Real", "Paseo de Gracia", "Calle de Alcalá", "Gran Vía", "Calle San Fernando",
    "Avenida de Andalucía", "Calle Nueva", "Calle de la Iglesia", "Calle Ramón y Cajal",
    "Calle Cervantes", "Calle Doctor Fleming", "Carrer de Balmes", "Calle Núñez de Balboa",
    "Avenida de América", "Calle Goya", "Calle de Velázquez", "Paseo de la Castellana",
    "Calle Sagasta", "Avenida del Puerto", "Calle Larios", "Calle Sierpes", "Rúa do Franco",
    "Calle Menéndez Pelayo", "Avenida de los Reyes Católicos", "Calle Jesús del Gran Poder",
)
EN_STREETS = (
    "High Street", "Church Road", "Station Road", "Victoria Road", "Green Lane",
    "Manor Road", "Park Avenue", "Main Street", "Oak Street", "Maple Avenue",
    "Elm Street", "Queen Street", "King Street", "Mill Lane", "School Lane",
    "Grafton Street", "O'Connell Street", "Baker Street", "Broadway", "Sunset Boulevard",
    "Cedar Lane", "Washington Avenue", "Abbey Road", "London Road",
)
STREET_ABBREV = (
    ("Calle ", "C/ "), ("Avenida ", "Avda. "), ("Plaza ", "Pza. "), ("Paseo ", "Pº "),
    (" Street", " St"), (" Road", " Rd"), (" Avenue", " Ave"), (" Lane", " Ln"),
    (" Boulevard", " Blvd"),
)

STORES = (
    ("ST-MAD-01", "Madrid"), ("ST-MAD-02", "Madrid"), ("ST-BCN-01", "Barcelona"),
    ("ST-BCN-02", "Barcelona"), ("ST-VLC-01", "Valencia"), ("ST-SVQ-01", "Sevilla"),
    ("ST-BIO-01", "Bilbao"), ("ST-AGP-01", "Málaga"), ("ST-ZAZ-01", "Zaragoza"),
    ("ST-LON-01", "London"), ("ST-LON-02", "London"), ("ST-MAN-01", "Manchester"),
    ("ST-DUB-01", "Dublin"), ("ST-NYC-01", "New York"),
)
STORE_CITY_CCY = {"Madrid": "EUR", "Barcelona": "EUR", "Valencia": "EUR", "Sevilla": "EUR",
                  "Bilbao": "EUR", "Málaga": "EUR", "Zaragoza": "EUR", "London": "GBP",
                  "Manchester": "GBP", "Dublin": "EUR", "New York": "USD"}

# (product_id, name, category, EUR price)
_PRODUCT_BASE = (
    ("Zapatillas running Aero", "footwear", 89.9), ("Botas de montaña Trek", "footwear", 129.0),
    ("Leather Chelsea Boots", "footwear", 149.0), ("Sandalias Playa", "footwear", 24.9),
    ("Camiseta algodón orgánico", "apparel", 19.9), ("Slim Fit Jeans", "apparel", 49.9),
    ("Chaqueta impermeable", "apparel", 99.0), ("Merino Wool Sweater", "apparel", 79.0),
    ("Vestido lino verano", "apparel", 59.9), ("Hoodie Classic", "apparel", 39.9),
    ("Auriculares inalámbricos", "electronics", 119.0), ("Smartwatch Fit 2", "electronics", 199.0),
    ("Bluetooth Speaker Mini", "electronics", 45.0), ("Cargador rápido USB-C", "electronics", 25.0),
    ("E-reader Paperlight", "electronics", 139.0), ("Cafetera espresso", "home", 249.0),
    ("Non-stick Pan Set", "home", 69.9), ("Juego de sábanas", "home", 45.0),
    ("Scented Candle Trio", "home", 22.5), ("Lámpara de lectura", "home", 35.0),
    ("Mochila urbana", "accessories", 55.0), ("Sunglasses Polar", "accessories", 89.0),
    ("Cartera de piel", "accessories", 39.0), ("Steel Water Bottle", "accessories", 18.9),
    ("Crema hidratante", "beauty", 16.5), ("Perfume Brisa 50ml", "beauty", 64.0),
    ("Shampoo Argan", "beauty", 9.9), ("Esterilla de yoga", "sports", 29.9),
    ("Dumbbell Pair 5kg", "sports", 34.9), ("Bicicleta estática", "sports", 329.0),
    ("Tienda de campaña 2p", "sports", 159.0), ("Kids Rain Jacket", "kids", 34.9),
    ("Juguete construcción", "kids", 44.9), ("Peluche oso", "kids", 19.9),
    ("Board Game Classic", "kids", 29.9), ("Set de té verde", "grocery", 14.9),
    ("Aceite de oliva virgen extra 1L", "grocery", 12.5), ("Coffee Beans 1kg", "grocery", 24.0),
)
PRODUCTS = tuple((f"SKU-{10001 + i}", n, c, p) for i, (n, c, p) in enumerate(_PRODUCT_BASE))

CAMPAIGN_THEMES_ES = ("Rebajas de enero", "San Valentín", "Novedades de primavera", "Día de la Madre",
                      "Rebajas de verano", "Vuelta al cole", "Black Friday", "Navidad",
                      "Newsletter semanal", "Ofertas flash", "Te echamos de menos")
CAMPAIGN_THEMES_EN = ("January Sale", "Valentine's Day", "Spring Arrivals", "Mother's Day",
                      "Summer Sale", "Back to School", "Black Friday", "Christmas Gifts",
                      "Weekly Newsletter", "Flash Deals", "We miss you")
LINK_PATHS = ("/ofertas", "/novedades", "/products/", "/sale", "/new-in", "/account", "/stores")

JUNK_EMAILS = ("test@test.com", "noemail@none.com", "N/A", "unknown", "-", "none@none.com",
               "a@a.com", "no@email.com")
JUNK_PHONES = ("000000000", "999999999", "N/A", "-", "unknown", "123456789", "0")
JUNK_NAMES = ("N/A", "unknown", "-", "test", "XXX", "cliente", "customer")

EMAIL_DOMAINS_ES = ("gmail.com", "gmail.com", "gmail.com", "hotmail.com", "hotmail.es", "yahoo.es",
                    "outlook.com", "telefonica.net", "icloud.com")
EMAIL_DOMAINS_EN = ("gmail.com", "gmail.com", "gmail.com", "yahoo.co.uk", "hotmail.co.uk",
                    "outlook.com", "icloud.com", "btinternet.com", "eircom.net", "aol.com")
WORK_DOMAINS = ("acme-corp.com", "iberdata.es", "globex.co.uk", "initech.com", "telco-sa.es",
                "bancosur.es", "hospital-central.es", "university.ie", "consultingpartners.com")

# ---- text templates: (language, sentiment) -> templates -----------------------------------
# sentiment: "pos" | "neu" | "neg"
SURVEY_COMMENTS = {
    ("es", "pos"): ("Todo perfecto, muy contento con {product}.", "Atención excelente en la tienda de {city}.",
                    "Entrega rapidísima, repetiré.", "Muy buena calidad, lo recomiendo.",
                    "El personal fue muy amable."),
    ("es", "neu"): ("Correcto, sin más.", "El pedido llegó bien aunque tardó un poco.",
                    "Precio razonable.", "Normal, cumple lo esperado."),
    ("es", "neg"): ("Muy decepcionado, el pedido llegó tarde y roto.", "Nadie me resuelve el problema con la factura.",
                    "Pésimo servicio, no volveré a comprar.", "Llevo {days} días esperando una respuesta.",
                    "La calidad de {product} ha empeorado mucho.", "Me cobraron dos veces."),
    ("en", "pos"): ("Great service, very happy with the {product}.", "Staff in {city} were lovely.",
                    "Fast delivery, will buy again.", "Excellent quality, highly recommend."),
    ("en", "neu"): ("It was ok.", "Delivery was fine, a bit slow.", "Fair price, nothing special.",
                    "Average experience."),
    ("en", "neg"): ("Very disappointed, order arrived late and damaged.", "Nobody sorted out my billing issue.",
                    "Terrible service, I won't shop here again.", "Still waiting after {days} days.",
                    "The {product} broke after a week.", "I was charged twice."),
}
SUGGESTIONS = {
    "es": ("Deberían abrir la tienda los domingos.", "Más tallas grandes, por favor.",
           "Estaría bien poder devolver en tienda lo comprado online.", "Poned más cajas, las colas son eternas.",
           "Me gustaría una app más rápida.", "Ofreced envío gratis a partir de 30 euros.",
           "Más productos ecológicos.", "El parking de la tienda de {city} es muy pequeño.",
           "Que el programa de puntos no caduque.", "Las etiquetas de precio no coinciden con la caja."),
    "en": ("Please open on Sundays.", "More plus sizes please.", "Let us return online orders in store.",
           "More tills, the queues are too long.", "The app is slow, please fix it.",
           "Free delivery over 30 would be nice.", "More eco-friendly products.",
           "The car park at the {city} store is too small.", "Points should not expire.",
           "Shelf prices don't match the till."),
}
REVIEW_TITLES = {
    ("es", "pos"): ("¡Genial!", "Muy recomendable", "Excelente compra", "Repetiré"),
    ("es", "neu"): ("Correcto", "Ni fu ni fa", "Aceptable"),
    ("es", "neg"): ("Evitadlo", "Muy mala experiencia", "Decepcionante", "Estafa"),
    ("en", "pos"): ("Brilliant!", "Highly recommended", "Great buy", "Love it"),
    ("en", "neu"): ("Okay", "Average", "Fine I guess"),
    ("en", "neg"): ("Avoid", "Awful experience", "Disappointing", "Never again"),
}
REVIEW_TEXTS = SURVEY_COMMENTS
SOCIAL_POSTS = {
    ("es", "pos"): ("Me encanta mi nueva compra de {product} 😍 #{brand}", "Gracias @{brand} por la atención en {city} 👏",
                    "Otra vez pedido perfecto de @{brand}", "Las rebajas de {brand} son lo más"),
    ("es", "neu"): ("¿Alguien sabe si {brand} abre el domingo?", "Mirando cosas en {brand}...",
                    "Pedido hecho en {brand}, a ver qué tal"),
    ("es", "neg"): ("@{brand} llevo {days} días sin mi pedido y nadie contesta 😡", "Nunca más compro en {brand}. Vergüenza.",
                    "@{brand} me habéis cobrado dos veces, ¿quién me lo devuelve?", "Servicio de atención de {brand} pésimo"),
    ("en", "pos"): ("Loving my new {product} from @{brand} 😍", "Shout out to the {brand} team in {city} 👏",
                    "Another perfect order from @{brand}", "{brand} sale is on, go go go"),
    ("en", "neu"): ("Does anyone know if {brand} is open Sunday?", "Browsing {brand} again...",
                    "Ordered from {brand}, let's see"),
    ("en", "neg"): ("@{brand} {days} days and still no parcel, nobody answers 😡", "Never shopping at {brand} again.",
                    "@{brand} you charged me twice, who's refunding me?", "{brand} customer service is a joke"),
}
BRAND = "NovaMarket"
OFF_TOPIC_POSTS = {
    "es": ("Qué calor hace hoy en {city}", "Partidazo esta noche ⚽", "Café y a trabajar ☕",
           "Fin de semana en la playa 🏖️"),
    "en": ("Lovely day in {city}", "Big match tonight ⚽", "Coffee first ☕", "Weekend at the beach 🏖️"),
}
CALL_NOTES = {
    ("es", "complaint"): ("Cliente muy molesto por retraso en la entrega.", "Se queja de producto defectuoso, pide reembolso.",
                          "Reclamación por cobro duplicado. Amenaza con darse de baja."),
    ("es", "billing"): ("Consulta sobre factura del último pedido.", "Pide duplicado de factura."),
    ("es", "delivery"): ("Pregunta por el estado del envío.", "Cambio de dirección de entrega."),
    ("es", "product_question"): ("Duda sobre tallas de {product}.", "Pregunta compatibilidad de {product}."),
    ("es", "cancellation"): ("Solicita baja de la cuenta y del programa de puntos.", "Quiere cancelar el pedido y darse de baja."),
    ("es", "telesales"): ("Ofrecida promoción de {product}.", "Llamada comercial campaña trimestral."),
    ("en", "complaint"): ("Customer upset about late delivery.", "Complains of faulty product, wants refund.",
                          "Double charge complaint. Threatens to close account."),
    ("en", "billing"): ("Question about last invoice.", "Requests copy of invoice."),
    ("en", "delivery"): ("Asks for shipment status.", "Delivery address change."),
    ("en", "product_question"): ("Sizing question about {product}.", "Asks about {product} compatibility."),
    ("en", "cancellation"): ("Wants to close account and loyalty membership.", "Cancel order and close account."),
    ("en", "telesales"): ("Offered {product} promotion.", "Quarterly outbound sales campaign call."),
}

ACCENT_TABLE = str.maketrans("áéíóúüñÁÉÍÓÚÜÑàèìòùÀÈÌÒÙçÇëËïÏ", "aeiouunAEIOUUNaeiouAEIOUcCeEiI")


def strip_accents(s: str) -> str:
    return s.translate(ACCENT_TABLE)
