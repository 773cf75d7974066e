#include "auth/authenticator.h"

namespace wavekv::auth {

Result<std::shared_ptr<Authenticator>> Authenticator::open(const std::string& users_file,
                                                           AuthenticatorOptions options) {
  if (options.workers == 0) options.workers = 1;
  std::shared_ptr<const Users> users;
  if (!users_file.empty()) {
    auto loaded = load_users(users_file);
    if (!loaded) return loaded.status();
    users = std::make_shared<const Users>(std::move(*loaded));
  }
  return std::shared_ptr<Authenticator>(new Authenticator(users_file, std::move(users), options));
}

Authenticator::Authenticator(std::string path, std::shared_ptr<const Users> users,
                             AuthenticatorOptions options)
    : path_(std::move(path)), options_(options), users_(std::move(users)) {
  if (!enabled()) return;
  for (size_t i = 0; i < options_.workers; ++i)
    workers_.emplace_back([pool = pool_] { work(pool); });
}

Authenticator::~Authenticator() { shutdown(); }

void Authenticator::shutdown() {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(pool_->mu);
    pool_->stopping = true;
    dropped.swap(pool_->queue);
  }
  pool_->cv.notify_all();
  // Outside the lock: a Done may hold what owns us.
  for (auto& job : dropped) job.done(Status::closed("the server is shutting down"));
  dropped.clear();
  for (auto& t : workers_) {
    if (!t.joinable()) continue;
    // The last owner may let go from a worker's own callback: that worker
    // only touches the pool (which it co-owns) from here on.
    if (t.get_id() == std::this_thread::get_id())
      t.detach();
    else
      t.join();
  }
}

std::shared_ptr<const Users> Authenticator::users() const {
  std::lock_guard lock(mu_);
  return users_;
}

Status Authenticator::reload() {
  if (!enabled()) return Status::ok();
  auto loaded = load_users(path_);
  if (!loaded) return loaded.status();
  auto users = std::make_shared<const Users>(std::move(*loaded));
  std::lock_guard lock(mu_);
  users_ = std::move(users);
  return Status::ok();
}

bool Authenticator::verify(std::string user, std::string password, Done done) {
  auto users = this->users();
  if (!users) return false;
  {
    std::lock_guard lock(pool_->mu);
    if (pool_->stopping) return false;
    if (pool_->queue.size() >= options_.max_queued) {
      ++pool_->busy_refusals;
      return false;
    }
    pool_->queue.push_back(
        {std::move(users), std::move(user), std::move(password), std::move(done)});
  }
  pool_->cv.notify_one();
  return true;
}

Result<Identity> Authenticator::verify_token(std::string_view token) const {
  auto users = this->users();
  if (!users) return Status::invalid(std::string(kWrongPassMessage));
  return users->authenticate_token(token);
}

uint64_t Authenticator::busy_refusals() const {
  std::lock_guard lock(pool_->mu);
  return pool_->busy_refusals;
}

void Authenticator::work(std::shared_ptr<Pool> pool) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(pool->mu);
      pool->cv.wait(lock, [&] { return pool->stopping || !pool->queue.empty(); });
      if (pool->stopping) return;
      job = std::move(pool->queue.front());
      pool->queue.pop_front();
    }
    Result<Identity> r = job.users->authenticate(job.user, job.password);
    job.done(std::move(r));
  }
}

}  // namespace wavekv::auth
