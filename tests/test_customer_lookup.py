"""core.customers.users_by_email: a bulk file's emails resolved without reading every user,
never to the wrong user."""

from bson import ObjectId

from core.customers import users_by_email
from core.storage.schema import USERS


def add_user(db, email: str, name: str = "Someone") -> ObjectId:
    user = ObjectId()
    db[USERS].insert_one({"_id": user, "name": name, "email": email, "purchasedCourses": [], "purchasedTests": []})
    return user


def test_emails_are_found_in_any_case_and_unknown_ones_left_out(db):
    ada, bob = add_user(db, "Ada@Example.com"), add_user(db, "bob@example.com ")

    found = users_by_email(db, ["ADA@example.COM", " bob@example.com", "nobody@example.com", "", None])

    assert found == {"ada@example.com": ada, "bob@example.com": bob}


def test_a_user_added_after_the_index_was_read_is_found(db):
    add_user(db, "first@example.com")
    assert users_by_email(db, ["first@example.com"])  # the process's index is read now
    late = add_user(db, "late@example.com")

    assert users_by_email(db, ["late@example.com"]) == {"late@example.com": late}


def test_an_email_changed_since_the_index_was_read_never_names_its_old_owner(db):
    moved = add_user(db, "old@example.com")
    assert users_by_email(db, ["old@example.com"]) == {"old@example.com": moved}
    db[USERS].update_one({"_id": moved}, {"$set": {"email": "new@example.com"}})
    newcomer = add_user(db, "old@example.com")  # the address now belongs to someone else

    assert users_by_email(db, ["old@example.com"]) == {"old@example.com": newcomer}
