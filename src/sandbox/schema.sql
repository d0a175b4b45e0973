-- The reference chat backend's schema: the 12 tables of the seed's database
-- (`chat_backend_db`), with Prisma's conventions: snake_case table names
-- (@@map) and camelCase, quoted column names.
CREATE TABLE users (
    id          text PRIMARY KEY,
    email       text UNIQUE NOT NULL,
    username    text UNIQUE NOT NULL,
    "firstName" text,
    "lastName"  text,
    "createdAt" timestamp(3) NOT NULL DEFAULT now(),
    "updatedAt" timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE posts (
    id          text PRIMARY KEY,
    "authorId"  text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    content     text NOT NULL,
    "createdAt" timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE interactions (
    id          text PRIMARY KEY,
    "userId"    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    "postId"    text NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    type        text NOT NULL,
    "createdAt" timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE connections (
    id            text PRIMARY KEY,
    "requesterId" text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    "addresseeId" text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'PENDING',
    "createdAt"   timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE coolness_ratings (
    id          text PRIMARY KEY,
    "userId"    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    "postId"    text NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    rating      integer NOT NULL,
    "createdAt" timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE pushes (
    id          text PRIMARY KEY,
    "userId"    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    "postId"    text NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    "createdAt" timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE post_views (
    id          text PRIMARY KEY,
    "userId"    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    "postId"    text NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    "viewedAt"  timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE conversations (
    id          text PRIMARY KEY,
    type        text NOT NULL DEFAULT 'DIRECT',
    name        text,
    "createdAt" timestamp(3) NOT NULL DEFAULT now(),
    "updatedAt" timestamp(3) NOT NULL DEFAULT now()
);
CREATE TABLE conversation_users (
    id               text PRIMARY KEY,
    "conversationId" text NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    "userId"         text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role             text NOT NULL DEFAULT 'MEMBER',
    "joinedAt"       timestamp(3) NOT NULL DEFAULT now(),
    UNIQUE ("conversationId", "userId")
);
CREATE TABLE messages (
    id               text PRIMARY KEY,
    "conversationId" text NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    "senderId"       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    content          text NOT NULL,
    type             text NOT NULL DEFAULT 'TEXT',
    status           text NOT NULL DEFAULT 'SENT',
    "createdAt"      timestamp(3) NOT NULL DEFAULT now(),
    "updatedAt"      timestamp(3) NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation_created_idx ON messages ("conversationId", "createdAt" DESC);
CREATE TABLE message_reads (
    id          text PRIMARY KEY,
    "messageId" text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    "userId"    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    "readAt"    timestamp(3) NOT NULL DEFAULT now(),
    UNIQUE ("messageId", "userId")
);
CREATE TABLE attachments (
    id          text PRIMARY KEY,
    "messageId" text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    url         text NOT NULL,
    "mimeType"  text,
    "createdAt" timestamp(3) NOT NULL DEFAULT now()
);

-- The seed's test identities.
INSERT INTO users (id, email, username, "firstName", "lastName") VALUES
    ('00000000-0000-0000-0000-000000000000', 'loadtest@example.com', 'loadtest_user', 'Load', 'Tester');
INSERT INTO conversations (id, type, name) VALUES
    ('8822dd87-d0c2-42be-93d2-1c0cb492e351', 'GROUP', 'Load test conversation');
INSERT INTO conversation_users (id, "conversationId", "userId") VALUES
    ('cu-loadtest-0000', '8822dd87-d0c2-42be-93d2-1c0cb492e351', '00000000-0000-0000-0000-000000000000');
